//! `memescope sweep`, through the real binary: the planned command lines, the Slurm
//! script and commands file, refusing an invalid grid value, and runs of a sweep writing
//! into one runs folder while a reader follows it.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use memescope::events::{read_events, EventLogTail, TrainEvent};
use memescope::runs::{RunDir, RunStatus};

fn exe() -> PathBuf {
    std::fs::canonicalize(env!("CARGO_BIN_EXE_memescope")).unwrap()
}

fn sweep(dir: &Path, args: &[&str]) -> Output {
    Command::new(exe()).arg("sweep").args(args).current_dir(dir).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A study folder holding a copy of the dashboard's fixture config.
fn study() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let dir_path = std::fs::canonicalize(dir.path()).unwrap();
    let config = dir_path.join("base.toml");
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/e2e.toml");
    std::fs::copy(fixture, &config).unwrap();
    (dir, config)
}

#[test]
fn grid_commands_slurm_array_and_commands_file() {
    let (_guard, config) = study();
    let dir = config.parent().unwrap();
    let grid = [
        "--config",
        "base.toml",
        "--set",
        "train.epochs=2",
        "--grid",
        "train.lr=1e-3,1e-2",
        "--grid",
        "text_encoder.model=models/all-MiniLM-L6-v2,it's mine",
        "--emit",
        "commands",
        "commands.txt",
    ];
    let out = sweep(dir, &grid);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let prefix = format!(
        "cd {} && {} train --headless --config {} --set train.epochs=2",
        dir.display(),
        exe().display(),
        config.display()
    );
    let expected: Vec<String> = [
        r#"--set train.lr=0.001 --set 'text_encoder.model="models/all-MiniLM-L6-v2"'"#,
        r#"--set train.lr=0.001 --set 'text_encoder.model="it'\''s mine"'"#,
        r#"--set train.lr=0.01 --set 'text_encoder.model="models/all-MiniLM-L6-v2"'"#,
        r#"--set train.lr=0.01 --set 'text_encoder.model="it'\''s mine"'"#,
    ]
    .iter()
    .map(|sets| format!("{prefix} {sets}"))
    .collect();
    let printed: Vec<String> = text(&out.stdout).lines().map(String::from).collect();
    assert_eq!(printed, expected);
    let file = std::fs::read_to_string(dir.join("commands.txt")).unwrap();
    assert_eq!(file.lines().collect::<Vec<_>>(), expected);

    // The same plan as a Slurm job array over the same list.
    let mut slurm = grid.to_vec();
    let len = slurm.len();
    slurm[len - 2..].copy_from_slice(&["slurm", "job"]);
    let out = sweep(dir, &slurm);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let script = dir.join("job/sweep.sbatch");
    let script_text = std::fs::read_to_string(&script).unwrap();
    assert!(script_text.contains("\n#SBATCH --array=0-3\n"), "{script_text}");
    assert!(script_text.contains(&dir.join("job/commands.txt").display().to_string()));
    assert!(Command::new("bash").arg("-n").arg(&script).status().unwrap().success());
    assert_eq!(std::fs::read_to_string(dir.join("job/commands.txt")).unwrap(), file);
}

#[test]
fn an_invalid_grid_value_is_refused_before_anything_runs() {
    let (_guard, config) = study();
    let dir = config.parent().unwrap();
    for (grid, problem) in [
        ("train.epochs=2,many", "train.epochs=\"many\""),
        ("model.heads=4,5", "divisible"),
        ("train.epohcs=1,2", "unknown field"),
    ] {
        let out = sweep(dir, &["--config", "base.toml", "--grid", grid]);
        assert!(!out.status.success(), "{grid} was accepted");
        assert!(text(&out.stderr).contains(problem), "{grid}: {}", text(&out.stderr));
        assert!(out.stdout.is_empty(), "no command printed for {grid}");
    }
    assert!(!dir.join("runs").exists(), "nothing ran");
}

/// Every event of every run under `runs`, as a reader that polls while they are written
/// (the Runs pane / `watch`) sees them, until `done` says the writers are gone.
fn follow(runs: &Path, mut done: impl FnMut() -> bool) -> BTreeMap<PathBuf, Vec<TrainEvent>> {
    let mut tails: BTreeMap<PathBuf, (EventLogTail, Vec<TrainEvent>)> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let finished = done();
        for run in RunDir::list(runs) {
            let (tail, seen) = tails
                .entry(run.path.clone())
                .or_insert_with(|| (EventLogTail::new(&run.events()), Vec::new()));
            seen.extend(tail.poll().unwrap());
            // A replay mid-run never fails on a line being written.
            read_events(&run.events()).unwrap();
        }
        if finished {
            return tails.into_iter().map(|(path, (_, seen))| (path, seen)).collect();
        }
        assert!(Instant::now() < deadline, "runs did not end");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A study over synthetic memes and tiny encoders; runs and cache in its folder.
fn synthetic_study() -> (tempfile::TempDir, PathBuf, common::Synthetic) {
    let guard = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(guard.path()).unwrap();
    let data = common::axiom(&dir.join("data"), 8, 5);
    let (bert, clip) = common::tiny_encoders(&dir);
    let config = dir.join("base.toml");
    std::fs::write(&config, common::config_toml(&data, "axiom", &bert, &clip, &dir)).unwrap();
    (guard, config, data)
}

fn assert_complete_run(run: &Path, seen: &[TrainEvent]) {
    let started = seen.iter().any(|e| matches!(e, TrainEvent::RunStarted(_)));
    assert!(started, "{}", run.display());
    assert!(matches!(seen.last(), Some(TrainEvent::Finished(_))), "{}", run.display());
    assert_eq!(seen, read_events(&RunDir::at(run).events()).unwrap(), "the tail saw the whole log");
    let report = RunDir::at(run).read_report().unwrap().expect("a report");
    assert_eq!(report.status, RunStatus::Finished);
}

/// Two machines of a cluster, played by two processes started at once from the emitted
/// command lines: each writes its own run directory into the shared runs folder while a
/// reader follows the folder.
#[test]
fn emitted_commands_run_side_by_side_into_one_runs_folder() {
    let (_guard, config, _) = synthetic_study();
    let dir = config.parent().unwrap();
    let out = sweep(
        dir,
        &[
            "--config",
            "base.toml",
            "--set",
            "train.epochs=2",
            "--seeds",
            "2",
            "--emit",
            "commands",
            "list.txt",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let list = std::fs::read_to_string(dir.join("list.txt")).unwrap();
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[1].ends_with("--set train.epochs=2 --set train.seed=4"), "{}", lines[1]);

    // Started from elsewhere: the line itself goes to the study folder.
    let mut machines: Vec<std::process::Child> = lines
        .iter()
        .map(|line| {
            Command::new("bash")
                .args(["-c", line])
                .current_dir("/")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut statuses = Vec::new();
    let followed = follow(&dir.join("runs"), || {
        machines.retain_mut(|child| match child.try_wait().unwrap() {
            Some(status) => {
                statuses.push(status);
                false
            }
            None => true,
        });
        machines.is_empty()
    });
    assert!(statuses.iter().all(|s| s.success()), "{statuses:?}");
    assert_eq!(followed.len(), 2, "two run directories: {:?}", followed.keys());
    let mut seeds = Vec::new();
    for (run, seen) in &followed {
        assert_complete_run(run, seen);
        seeds.push(RunDir::open(run).unwrap().read_config().unwrap().train.seed);
    }
    seeds.sort();
    assert_eq!(seeds, [3, 4]);
}

/// Without --emit the sweep runs its runs here, one after another, prints the table and
/// fails when a run failed.
#[test]
fn a_local_sweep_runs_each_run_and_reports_a_failed_one() {
    let (_guard, config, data) = synthetic_study();
    let dir = config.parent().unwrap();
    let missing = dir.join("missing.json");
    let grid = format!("data.validation={},{}", missing.display(), data.validation.display());
    let mut child = Command::new(exe())
        .args(["sweep", "--config", "base.toml", "--set", "train.epochs=1", "--grid", &grid])
        .current_dir(dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let followed = follow(&dir.join("runs"), || child.try_wait().unwrap().is_some());
    let out = child.wait_with_output().unwrap();
    let stdout = text(&out.stdout);
    assert!(!out.status.success(), "a failed run fails the sweep:\n{stdout}");
    assert!(text(&out.stderr).contains("1 of 2 run(s) did not finish"), "{}", text(&out.stderr));

    let table: Vec<&str> = stdout.lines().skip_while(|l| !l.starts_with("run dir")).collect();
    assert_eq!(table.len(), 3, "{stdout}");
    assert!(table[1].contains("failed"), "{}", table[1]);
    assert!(table[1].contains(&format!("data.validation=\"{}\"", missing.display())));
    let finished: Vec<_> = followed
        .iter()
        .filter(|(_, seen)| matches!(seen.last(), Some(TrainEvent::Finished(_))))
        .collect();
    assert_eq!(finished.len(), 1);
    let (run, seen) = finished[0];
    assert_complete_run(run, seen);
    let f1 = RunDir::at(run).read_report().unwrap().unwrap().macro_f1;
    assert!(table[2].starts_with(&run.display().to_string()), "{}", table[2]);
    assert!(table[2].ends_with(&format!("{f1:.4}")), "{}", table[2]);
}
