//! `memescope train --headless`: the engine with a plain progress display.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{bail, Result};

use super::progress::HeadlessProgress;
use crate::config::Config;
use crate::train::{spawn_resume, spawn_run};

pub enum Job {
    Fresh(Box<Config>),
    Resume(PathBuf),
}

pub async fn run(job: Job) -> Result<()> {
    let mut handle = match job {
        Job::Fresh(config) => spawn_run(*config),
        Job::Resume(dir) => spawn_resume(dir),
    };
    // Ctrl-C asks the trainer to stop at the next step boundary, keeping the run consistent.
    let stop = handle.stop.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("\nstopping at the next step (Ctrl-C again to abort)…");
            stop.request();
            let _ = tokio::signal::ctrl_c().await;
            std::process::exit(130);
        }
    });
    let mut progress = HeadlessProgress::new(std::io::stderr().is_terminal());
    while let Some(event) = handle.events.recv().await {
        progress.show(&event);
    }
    progress.finish();
    match handle.outcome.await? {
        Ok(summary) => {
            println!("{}", summary.run_dir.display());
            Ok(())
        }
        Err(error) => bail!("training failed: {error:#}"),
    }
}
