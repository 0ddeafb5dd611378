//! `memescope train --headless`: the engine with a plain progress display.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};

use super::progress::HeadlessProgress;
use crate::config::Config;
use crate::signals::StopSignals;
use crate::train::{spawn_resume, spawn_run, ResumeOptions};

pub enum Job {
    Fresh(Box<Config>),
    Resume(PathBuf, ResumeOptions),
}

/// Trains to the end: success only when the run completed; a run stopped by SIGINT or
/// SIGTERM exits as the signal would (130, 143), a failed one with an error (1).
pub async fn run(job: Job) -> Result<ExitCode> {
    let signals = StopSignals::listen()?;
    let mut handle = match job {
        Job::Fresh(config) => spawn_run(*config),
        Job::Resume(dir, options) => spawn_resume(dir, options),
    };
    // The first signal asks the trainer to stop at the next step boundary, keeping the
    // run consistent and resumable.
    let stop = handle.stop.clone();
    let first = signals.clone();
    tokio::spawn(async move {
        let signal = first.first().await;
        eprintln!("\n{}: stopping at the next step (again to stop now)…", signal.name());
        stop.request();
    });
    let mut progress = HeadlessProgress::new(std::io::stderr().is_terminal());
    while let Some(event) = handle.events.recv().await {
        progress.show(&event);
    }
    progress.finish();
    match handle.outcome.await? {
        Ok(summary) => {
            println!("{}", summary.run_dir.display());
            Ok(match signals.received() {
                Some(signal) if handle.stop.stopped_a_run() => signal.exit_code(),
                _ => ExitCode::SUCCESS,
            })
        }
        Err(error) => bail!("training failed: {error:#}"),
    }
}
