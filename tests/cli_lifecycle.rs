//! The real binary under the signals schedulers send: exit codes, the run directory after a
//! stop, a `kill -9` followed by `--resume`, and the `--set`s a resume refuses.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use memescope::events::{read_events, TrainEvent};
use memescope::runs::{self, RunDir, RunStatus};

/// A config over synthetic data and tiny encoders, with runs under `<dir>/runs`.
fn fixture() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let data = common::axiom(&dir.path().join("data"), 6, 21);
    let (bert, clip) = common::tiny_encoders(dir.path());
    let config = dir.path().join("config.toml");
    std::fs::write(&config, common::config_toml(&data, "axiom", &bert, &clip, dir.path())).unwrap();
    (dir, config)
}

fn memescope(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_memescope"));
    command.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    command
}

fn train(config: &Path, sets: &[&str]) -> Command {
    let mut args = vec!["train", "--headless", "-c", config.to_str().unwrap()];
    for set in sets {
        args.extend(["--set", set]);
    }
    memescope(&args)
}

/// The only run directory under `<dir>/runs`, once its first epoch's checkpoint exists.
fn wait_for_first_checkpoint(dir: &Path, child: &mut Child) -> RunDir {
    let started = Instant::now();
    loop {
        let runs = RunDir::list(&dir.join("runs"));
        if let Some(run) = runs.into_iter().find(|r| r.last_checkpoint().exists()) {
            return run;
        }
        assert!(child.try_wait().unwrap().is_none(), "the run ended before its first epoch");
        assert!(started.elapsed() < Duration::from_secs(120), "no checkpoint after 2 minutes");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn signal(child: &Child, signal: i32) {
    assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A run stopped by `signal` after its first checkpoint: the exit code, and a run directory
/// a resume can continue (report `stopped`, the log ending in `Stopped`).
fn stopped_by(signal_number: i32) -> (i32, tempfile::TempDir, RunDir, Output) {
    let (dir, config) = fixture();
    let mut child = train(&config, &["train.epochs=100000"]).spawn().unwrap();
    let run = wait_for_first_checkpoint(dir.path(), &mut child);
    signal(&child, signal_number);
    let output = child.wait_with_output().unwrap();
    let code = output.status.code().expect("the process exits, not killed by the signal");
    let report: runs::Report = runs::read_json(&run.report()).unwrap();
    assert_eq!(report.status, RunStatus::Stopped, "{}", text(&output.stderr));
    let events = read_events(&run.events()).unwrap();
    assert!(matches!(events.last(), Some(TrainEvent::Stopped { .. })), "{:?}", events.last());
    let state: runs::TrainState = runs::read_json(&run.state()).unwrap();
    let checkpoint = runs::read_checkpoint(&run.last_checkpoint(), &candle_core::Device::Cpu);
    assert_eq!(checkpoint.unwrap().state.as_ref(), Some(&state), "state.json matches last");
    (code, dir, run, output)
}

#[test]
fn sigterm_stops_at_a_step_boundary_and_exits_143() {
    let (code, _dir, run, output) = stopped_by(libc::SIGTERM);
    assert_eq!(code, 143, "{}", text(&output.stderr));
    assert!(text(&output.stderr).contains("SIGTERM"));

    // A resume may extend the run, but not change it.
    let path = run.path.to_str().unwrap();
    let refused =
        memescope(&["train", "--resume", path, "--set", "model.dropout=0.5"]).output().unwrap();
    assert_eq!(refused.status.code(), Some(1));
    let message = text(&refused.stderr);
    assert!(message.contains("model.dropout=0.5") && message.contains("train.epochs"), "{message}");
    let refused = memescope(&["train", "--resume", path, "-c", "other.toml"]).output().unwrap();
    assert_eq!(refused.status.code(), Some(2), "--config conflicts with --resume");

    let state: runs::TrainState = runs::read_json(&run.state()).unwrap();
    let epochs = format!("train.epochs={}", state.completed_epochs + 1);
    let extended = memescope(&["train", "--resume", path, "--set", &epochs]).output().unwrap();
    assert_eq!(extended.status.code(), Some(0), "{}", text(&extended.stderr));
    let report: runs::Report = runs::read_json(&run.report()).unwrap();
    assert_eq!(
        (report.status, report.epochs_run),
        (RunStatus::Finished, state.completed_epochs + 1)
    );
}

#[test]
fn sigint_stops_like_ctrl_c_and_exits_130() {
    let (code, _dir, _run, output) = stopped_by(libc::SIGINT);
    assert_eq!(code, 130, "{}", text(&output.stderr));
}

#[test]
fn a_completed_run_exits_0_and_a_diverging_one_exits_1() {
    let (_dir, config) = fixture();
    let done = train(&config, &["train.epochs=2"]).output().unwrap();
    assert_eq!(done.status.code(), Some(0), "{}", text(&done.stderr));
    let run = PathBuf::from(text(&done.stdout).trim());
    let report: runs::Report = runs::read_json(&RunDir::open(&run).unwrap().report()).unwrap();
    assert_eq!(report.status, RunStatus::Finished);

    let diverging = ["train.epochs=2", "train.lr=1e38", "train.grad_clip=0"];
    let failed = train(&config, &diverging).output().unwrap();
    assert_eq!(failed.status.code(), Some(1));
    assert!(text(&failed.stderr).contains("loss became"), "{}", text(&failed.stderr));
}

/// `kill -9` mid-run (no chance to clean up), then `--resume`: the run completes, and its
/// directory is whole: the epochs after the last checkpoint logged once each, a finished
/// report, a readable checkpoint that agrees with `state.json`. (The run is far too long
/// to end by itself; the resume brings its end near with `train.epochs`.)
#[test]
fn kill_9_then_resume_completes_the_run() {
    let (dir, config) = fixture();
    let mut child = train(&config, &["train.epochs=100000"]).spawn().unwrap();
    let run = wait_for_first_checkpoint(dir.path(), &mut child);
    std::thread::sleep(Duration::from_millis(50)); // somewhere inside a later epoch
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let killed_at: runs::TrainState = runs::read_json(&run.state()).unwrap();
    assert!(runs::read_checkpoint(&run.last_checkpoint(), &candle_core::Device::Cpu).is_ok());
    let end = killed_at.completed_epochs + 3;

    let path = run.path.to_str().unwrap();
    let epochs = format!("train.epochs={end}");
    let resumed = memescope(&["train", "--resume", path, "--set", &epochs]).output().unwrap();
    assert_eq!(resumed.status.code(), Some(0), "{}", text(&resumed.stderr));
    let report: runs::Report = runs::read_json(&run.report()).unwrap();
    assert_eq!((report.status, report.epochs_run), (RunStatus::Finished, end));
    let state: runs::TrainState = runs::read_json(&run.state()).unwrap();
    assert_eq!(state.completed_epochs, end);
    let checkpoint = runs::read_checkpoint(&run.last_checkpoint(), &candle_core::Device::Cpu);
    assert_eq!(checkpoint.unwrap().state, Some(state));
    let events = read_events(&run.events()).unwrap();
    assert!(matches!(events.last(), Some(TrainEvent::Finished(_))));
    let after_resume: Vec<usize> = events
        .iter()
        .rev()
        .take_while(|e| !matches!(e, TrainEvent::RunStarted(_)))
        .filter_map(|e| match e {
            TrainEvent::Epoch(r) => Some(r.epoch),
            _ => None,
        })
        .collect();
    let expected: Vec<usize> = (killed_at.completed_epochs + 1..=end).rev().collect();
    assert_eq!(after_resume, expected, "the resume continues after the last checkpoint");
}
