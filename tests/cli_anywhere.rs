//! The command line from another directory: a config's relative paths resolve against its
//! own folder, `-v`/`-q` set what reaches stderr, and each run keeps its `run.log` and
//! `provenance.json`.

mod common;

use std::path::Path;
use std::process::{Command, Output};

/// `memescope <args>` run from `cwd`, offline.
fn memescope(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_memescope"))
        .current_dir(cwd)
        .env("HF_HUB_OFFLINE", "1")
        .env_remove("MEMESCOPE_LOG")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn a_config_elsewhere_trains_from_any_directory_with_logs_and_provenance() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("project");
    let data = common::axiom(&project.join("data"), 3, 5);
    let (bert, clip) = common::tiny_encoders(&project);
    // Every path in the file relative to the file's folder.
    let text = common::config_toml(&data, "axiom", &bert, &clip, &project)
        .replace(&format!("{}/", project.display()), "")
        .replace("epochs = 25", "epochs = 1");
    assert!(!text.contains(&project.display().to_string()), "{text}");
    let config = project.join("x.toml");
    std::fs::write(&config, text).unwrap();
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let config = config.to_str().unwrap();

    let verbose = memescope(&elsewhere, &["-v", "train", "--headless", "--config", config]);
    let stderr = String::from_utf8_lossy(&verbose.stderr);
    assert!(verbose.status.success(), "{stderr}");
    let run_dir = String::from_utf8(verbose.stdout).unwrap().trim().to_string();
    let run_dir = Path::new(&run_dir);
    assert_eq!(run_dir.parent(), Some(project.join("runs").as_path()), "runs next to the config");
    assert!(std::fs::read_dir(&elsewhere).unwrap().next().is_none(), "nothing written in the cwd");
    assert!(stderr.contains(" INFO ") && stderr.contains("starts from step 0"), "{stderr}");

    let run_log = std::fs::read_to_string(run_dir.join("run.log")).unwrap();
    assert!(run_log.contains("starts from step 0") && run_log.contains("ends after 1 epochs"));
    let provenance = memescope::runs::RunDir::open(run_dir).unwrap().read_provenance().unwrap();
    let session = &provenance.sessions[0];
    assert_eq!(session.command_line[1..], ["-v", "train", "--headless", "--config", config]);
    assert!(session.ended.is_some());
    assert_eq!(provenance.models.len(), 2, "{provenance:?}");

    // -q: errors only on stderr; the run's own log still has its info lines.
    let quiet = memescope(&elsewhere, &["-q", "train", "--headless", "--config", config]);
    let stderr = String::from_utf8_lossy(&quiet.stderr);
    assert!(quiet.status.success(), "{stderr}");
    assert!(!stderr.contains(" INFO ") && !stderr.contains(" WARN "), "{stderr}");
    let run_dir = String::from_utf8(quiet.stdout).unwrap();
    let run_log = std::fs::read_to_string(Path::new(run_dir.trim()).join("run.log")).unwrap();
    assert!(run_log.contains("starts from step 0"), "{run_log}");
}
