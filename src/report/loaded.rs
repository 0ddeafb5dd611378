//! A run directory as the report sees it: whatever of its files exist, read through
//! [`crate::runs`]. What is missing becomes a note, not an error, so older runs still open.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::config::Config;
use crate::events::{GateUsage, TrainEvent};
use crate::runs::{EpochRow, Report, RunDir};

pub struct ReportedRun {
    /// How tables and legends name the run (its directory name, or `parent/name` where two
    /// runs share a name, as CV folds do).
    pub name: String,
    pub path: PathBuf,
    /// `None` when `config.toml` no longer parses (a run from an older memescope).
    pub config: Option<Config>,
    /// `None` before the run's first epoch ended.
    pub report: Option<Report>,
    pub epochs: Vec<EpochRow>,
    /// Gate usage per class at the best epoch; `None` without a mixture of experts.
    pub gates: Option<GateUsage>,
    /// What could not be read, for the summary's notes.
    pub notes: Vec<String>,
}

impl ReportedRun {
    /// Opens the run directory at `path`. Only a directory without `config.toml` is an error.
    pub fn open(path: &Path) -> Result<Self> {
        let run = RunDir::open(path)?;
        let mut notes = Vec::new();
        let mut note = |what: String| notes.push(format!("{}: {what}", run.id));
        let config = run.read_config().map_err(|e| note(format!("{e:#}"))).ok();
        let report = run.read_report().unwrap_or_else(|e| {
            note(format!("{e:#}"));
            None
        });
        if report.is_none() {
            note("no completed epoch (no report.json)".into());
        }
        let epochs = run.read_epochs().unwrap_or_else(|e| {
            note(format!("{e:#}"));
            Vec::new()
        });
        let events = run.read_events().unwrap_or_else(|e| {
            note(format!("{e:#}"));
            Vec::new()
        });
        let best_epoch = report.as_ref().map(|r| r.best_epoch);
        let gates = best_epoch_gates(&events, best_epoch);
        Ok(Self { name: run.id.clone(), path: run.path, config, report, epochs, gates, notes })
    }

    /// Labels in order: the report's, else those of the latest epoch row.
    pub fn labels(&self) -> Vec<String> {
        match &self.report {
            Some(report) => report.labels.clone(),
            None => self
                .epochs
                .last()
                .map(|row| row.class_f1.iter().map(|(label, _)| label.clone()).collect())
                .unwrap_or_default(),
        }
    }
}

/// Opens every run; names them by directory, with the parent's name where two collide.
pub fn open_runs(paths: &[PathBuf]) -> Result<Vec<ReportedRun>> {
    let mut runs = paths.iter().map(|path| ReportedRun::open(path)).collect::<Result<Vec<_>>>()?;
    let names: Vec<String> = runs.iter().map(|run| run.name.clone()).collect();
    for run in &mut runs {
        if names.iter().filter(|name| **name == run.name).count() > 1 {
            let parent = run.path.parent().and_then(Path::file_name);
            if let Some(parent) = parent {
                run.name = format!("{}/{}", parent.to_string_lossy(), run.name);
            }
        }
    }
    Ok(runs)
}

/// The gate usage of the best epoch (the latest record of it, as a resumed run may repeat
/// an epoch), or of the last epoch when no epoch is known to be best.
fn best_epoch_gates(events: &[TrainEvent], best_epoch: Option<usize>) -> Option<GateUsage> {
    events
        .iter()
        .rev()
        .filter_map(|event| match event {
            TrainEvent::Epoch(record) => Some(record),
            _ => None,
        })
        .find(|record| best_epoch.is_none_or(|best| record.epoch == best))
        .and_then(|record| record.gates.clone())
}
