//! Running a sweep on this machine: each run as a child process of the same binary, one
//! after another, so that a run that fails (or crashes) does not take the others with it.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};

use super::TrainCommand;
use crate::runs::RunDir;

/// What became of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub label: String,
    /// The run directory the child printed; `None` when it failed before saying.
    pub run_dir: Option<PathBuf>,
    pub result: RunResult,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RunResult {
    /// The run ended; its best epoch's macro-F1 (`None` if it stopped before one).
    Trained {
        macro_f1: Option<f64>,
    },
    Failed(String),
    /// The sweep was interrupted before this run started.
    NotStarted,
}

impl Outcome {
    pub fn failed(&self) -> bool {
        !matches!(self.result, RunResult::Trained { .. })
    }
}

/// Runs `runs` (label, command) in order, the children's progress going to our stderr.
/// Once `stop` is set, the remaining runs are not started.
pub fn run_all(runs: &[(String, TrainCommand)], stop: &AtomicBool) -> Vec<Outcome> {
    let total = runs.len();
    runs.iter()
        .enumerate()
        .map(|(i, (label, command))| {
            if stop.load(Ordering::SeqCst) {
                return Outcome {
                    label: label.clone(),
                    run_dir: None,
                    result: RunResult::NotStarted,
                };
            }
            eprintln!("[sweep {}/{total}] {label}", i + 1);
            run_one(label, command)
        })
        .collect()
}

fn run_one(label: &str, command: &TrainCommand) -> Outcome {
    let outcome = |run_dir, result| Outcome { label: label.to_string(), run_dir, result };
    let output = match command.process().stdout(Stdio::piped()).stderr(Stdio::inherit()).output() {
        Ok(output) => output,
        Err(err) => {
            let why = format!("could not start {}: {err}", command.exe.display());
            return outcome(None, RunResult::Failed(why));
        }
    };
    // `train --headless` prints the run directory as its last line.
    let stdout = String::from_utf8_lossy(&output.stdout);
    let run_dir = stdout.lines().rev().find(|l| !l.trim().is_empty()).map(PathBuf::from);
    if !output.status.success() {
        return outcome(run_dir, RunResult::Failed(output.status.to_string()));
    }
    let Some(run_dir) = run_dir else {
        return outcome(None, RunResult::Failed("printed no run directory".to_string()));
    };
    let dir = if run_dir.is_relative() { command.dir.join(&run_dir) } else { run_dir };
    match RunDir::at(&dir).read_report() {
        Ok(report) => {
            let macro_f1 = report.map(|r| r.macro_f1);
            outcome(Some(dir), RunResult::Trained { macro_f1 })
        }
        Err(err) => outcome(Some(dir), RunResult::Failed(format!("{err:#}"))),
    }
}

/// The end-of-sweep table: run directory, label and macro-F1 (or what went wrong).
pub fn summary_table(outcomes: &[Outcome]) -> String {
    let rows: Vec<[String; 3]> = outcomes
        .iter()
        .map(|o| {
            let dir = o.run_dir.as_ref().map_or("-".to_string(), |d| d.display().to_string());
            let result = match &o.result {
                RunResult::Trained { macro_f1: Some(f1) } => format!("{f1:.4}"),
                RunResult::Trained { macro_f1: None } => "- (no epoch)".to_string(),
                RunResult::Failed(why) => format!("failed: {why}"),
                RunResult::NotStarted => "not started".to_string(),
            };
            [dir, o.label.clone(), result]
        })
        .collect();
    let header = ["run dir", "label", "macro-F1"].map(String::from);
    let width = |column: usize| {
        rows.iter().chain([&header]).map(|row| row[column].chars().count()).max().unwrap_or(0)
    };
    let (dir_width, label_width) = (width(0), width(1));
    std::iter::once(&header)
        .chain(&rows)
        .map(|[dir, label, result]| {
            format!("{dir:<dir_width$}  {label:<label_width$}  {result}").trim_end().to_string()
                + "\n"
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_lines_up_and_says_what_failed() {
        let outcomes = [
            Outcome {
                label: "seed=1".into(),
                run_dir: Some("/r/a".into()),
                result: RunResult::Trained { macro_f1: Some(0.81234) },
            },
            Outcome {
                label: "seed=2 longer".into(),
                run_dir: None,
                result: RunResult::Failed("exit status: 1".into()),
            },
            Outcome { label: "seed=3".into(), run_dir: None, result: RunResult::NotStarted },
        ];
        let table = summary_table(&outcomes);
        assert_eq!(
            table,
            "run dir  label          macro-F1\n\
             /r/a     seed=1         0.8123\n\
             -        seed=2 longer  failed: exit status: 1\n\
             -        seed=3         not started\n"
        );
        assert_eq!(outcomes.iter().filter(|o| o.failed()).count(), 2);
    }

    #[test]
    fn a_child_that_cannot_start_or_fails_is_a_failed_run() {
        let missing = TrainCommand::new(
            std::path::Path::new("/nonexistent/memescope"),
            std::path::Path::new("/"),
            std::path::Path::new("/c.toml"),
            &[],
        );
        let false_cmd = TrainCommand { exe: "false".into(), ..missing.clone() };
        let stop = AtomicBool::new(false);
        let runs = [("a".to_string(), missing), ("b".to_string(), false_cmd)];
        let outcomes = run_all(&runs, &stop);
        assert!(
            matches!(&outcomes[0].result, RunResult::Failed(why) if why.contains("could not start"))
        );
        assert!(
            matches!(&outcomes[1].result, RunResult::Failed(why) if why.contains("exit status"))
        );
        stop.store(true, Ordering::SeqCst);
        assert_eq!(run_all(&runs, &stop)[1].result, RunResult::NotStarted);
    }
}
