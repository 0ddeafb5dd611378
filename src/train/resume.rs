//! Where a run starts: from scratch, or from a checkpoint of an earlier, interrupted or
//! finished run, with the weights, optimizer moments and progress saved together.

use std::path::PathBuf;

use anyhow::{bail, Result};
use candle_core::Device;
use candle_nn::VarMap;

use crate::config::Config;
use crate::runs::{read_checkpoint, Checkpoint, RunDir, RunStatus, TrainState};

/// Which checkpoint `--resume` continues from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ResumeFrom {
    /// `last.safetensors`: the last completed epoch, with the optimizer's moments; the run
    /// continues exactly as if it had never stopped.
    #[default]
    Last,
    /// `best.safetensors`: back to the best epoch, when the last checkpoint is damaged.
    /// The epochs after it are trained again, and the optimizer's moments start afresh.
    Best,
}

/// How to resume a run.
#[derive(Debug, Clone, Default)]
pub struct ResumeOptions {
    pub from: ResumeFrom,
    /// A new `train.epochs`, to extend a finished (or interrupted) run.
    pub epochs: Option<usize>,
}

/// The point a run trains from.
pub(crate) struct Start {
    pub state: TrainState,
    /// The checkpoint whose weights (and moments, when it has them) to load, and its path.
    pub checkpoint: Option<(PathBuf, Checkpoint)>,
    /// Said to the user when the run starts (a resume that is not exact, and why).
    pub notice: Option<String>,
}

impl Start {
    pub fn fresh() -> Self {
        Self { state: TrainState::default(), checkpoint: None, notice: None }
    }

    /// Loads the checkpoint's weights into `varmap`.
    pub fn load_weights(&self, varmap: &VarMap) -> Result<()> {
        match &self.checkpoint {
            Some((path, checkpoint)) => checkpoint.load_into(varmap, path),
            None => Ok(()),
        }
    }
}

/// The run's config (with `options.epochs` applied and saved) and where it continues from.
pub(crate) fn resume_point(run: &RunDir, options: &ResumeOptions) -> Result<(Config, Start)> {
    let mut config = run.read_config()?;
    let start = checkpoint_start(run, options.from)?;
    let done = start.state.completed_epochs;
    match options.epochs {
        Some(epochs) if epochs <= done => bail!(
            "{} has already completed {done} epochs; train.epochs={epochs} would train none",
            run.path.display()
        ),
        Some(epochs) => {
            config.train.epochs = epochs;
            run.write_config(&config)?;
        }
        None if done >= config.train.epochs => bail!(
            "{} has already run all {done} of its epochs; extend it with --set train.epochs=N \
             (N > {done})",
            run.path.display()
        ),
        None if options.from == ResumeFrom::Last && finished(run)? => bail!(
            "{} finished (early stopping after epoch {done}); extend it with \
             --set train.epochs=N to train on",
            run.path.display()
        ),
        None => {}
    }
    Ok((config, start))
}

fn finished(run: &RunDir) -> Result<bool> {
    Ok(run.read_report()?.is_some_and(|report| report.status == RunStatus::Finished))
}

fn checkpoint_start(run: &RunDir, from: ResumeFrom) -> Result<Start> {
    let path = match from {
        ResumeFrom::Last => run.last_checkpoint(),
        ResumeFrom::Best => run.best_checkpoint(),
    };
    if !path.exists() {
        let state = run.read_state()?;
        if from == ResumeFrom::Best || state.completed_epochs > 0 {
            bail!(
                "{} is missing, but {} says {} epochs completed",
                path.display(),
                run.state().display(),
                state.completed_epochs
            );
        }
        // Stopped before its first epoch ended: nothing to continue, start again (the
        // seeded initial weights are the same).
        return Ok(Start::fresh());
    }
    let checkpoint = read_checkpoint(&path, &Device::Cpu).map_err(|error| {
        let best = run.best_checkpoint();
        if from == ResumeFrom::Last && best.exists() {
            error.context(format!(
                "cannot resume {}; --resume-from best continues from {} instead (the epochs \
                 after the best one are trained again)",
                run.path.display(),
                best.display()
            ))
        } else {
            error.context(format!("cannot resume {}", run.path.display()))
        }
    })?;
    let (state, mut notice) = match (&checkpoint.state, from) {
        (Some(state), _) => (state.clone(), None),
        // Checkpoints written before they carried their state: `state.json` describes the
        // last one.
        (None, ResumeFrom::Last) => (
            run.read_state()?,
            Some("the checkpoint predates saved optimizer state: its moments start afresh"),
        ),
        (None, ResumeFrom::Best) => bail!(
            "{} predates checkpoints that record their epoch; resume from last instead",
            path.display()
        ),
    };
    if from == ResumeFrom::Best {
        notice = Some("resuming from the best epoch: the optimizer's moments start afresh");
    }
    let notice =
        notice.map(|n| format!("{} after epoch {}: {n}", path.display(), state.completed_epochs));
    let checkpoint = Some((path, checkpoint));
    Ok(Start { state, checkpoint, notice })
}
