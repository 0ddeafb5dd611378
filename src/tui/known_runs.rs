//! Every run the Runs pane lists: those of this session (kept up to date from events) and
//! earlier ones found in the runs directory (read through [`crate::runs::RunDir`]).

use std::path::Path;

use anyhow::Result;

use crate::config::Config;
use crate::events::{read_events, EpochRecord, RunInfo, TrainEvent};
use crate::runs::{RunDir, RunStatus};

#[derive(Debug, Clone, PartialEq)]
pub struct KnownRun {
    pub id: String,
    /// Its difference from the base config (`crate::plan::run_label`), or its switches
    /// (`Ablation::short_label`) when either config is unknown.
    pub label: String,
    /// The label without the seed: the runs sharing it are repeats of one setup.
    pub seedless: String,
    /// The run's config, when known (its `config.toml`, or the one it was started with).
    pub config: Option<Box<Config>>,
    pub macro_f1: Option<f64>,
    pub weighted_f1: Option<f64>,
    /// F1 per class of the best epoch, by label.
    pub per_class: Vec<(String, f64)>,
    pub seconds: Option<f64>,
    pub status: RunStatus,
}

impl KnownRun {
    fn new(id: String, label: String) -> Self {
        Self {
            id,
            seedless: label.clone(),
            label,
            config: None,
            macro_f1: None,
            weighted_f1: None,
            per_class: Vec::new(),
            seconds: None,
            status: RunStatus::Preparing,
        }
    }

    fn started(info: &RunInfo) -> Self {
        Self::new(info.run_id.clone(), info.ablation.short_label())
    }

    /// Keeps the best epoch: the one the trainer marked best, else the first one seen.
    fn record_epoch(&mut self, epoch: &EpochRecord) {
        self.status = RunStatus::Running;
        if epoch.is_best || self.macro_f1.is_none() {
            self.macro_f1 = Some(epoch.metrics.macro_f1);
            self.weighted_f1 = Some(epoch.metrics.weighted_f1);
            self.per_class =
                epoch.metrics.per_class.iter().map(|c| (c.label.clone(), c.f1)).collect();
        }
        self.seconds = Some(self.seconds.unwrap_or(0.0) + epoch.seconds);
    }

    /// Applies one event of this run; `RunStarted` is handled by the table.
    pub fn apply(&mut self, event: &TrainEvent) {
        match event {
            TrainEvent::Step(_) => self.status = RunStatus::Running,
            TrainEvent::Epoch(epoch) => self.record_epoch(epoch),
            TrainEvent::Finished(summary) => {
                self.status = RunStatus::Finished;
                self.macro_f1 = Some(summary.macro_f1);
                self.weighted_f1 = Some(summary.weighted_f1);
                self.seconds = Some(summary.seconds);
            }
            TrainEvent::Stopped { .. } => self.status = RunStatus::Stopped,
            TrainEvent::Failed { .. } => self.status = RunStatus::Failed,
            TrainEvent::RunStarted(_)
            | TrainEvent::Stage { .. }
            | TrainEvent::Progress { .. }
            | TrainEvent::CheckpointSaved { .. } => {}
        }
    }
}

#[derive(Debug, Default)]
pub struct KnownRuns {
    pub rows: Vec<KnownRun>,
    /// The config labels are differences from: the dashboard's base config (or the
    /// watched run's).
    pub base: Option<Config>,
}

impl KnownRuns {
    /// How a run of `config` is labelled here.
    pub fn label_of(&self, config: &Config) -> String {
        match &self.base {
            Some(base) => crate::plan::run_label(base, config),
            None => config.ablation.short_label(),
        }
    }

    fn relabel(&self, row: &mut KnownRun) {
        if let (Some(base), Some(config)) = (&self.base, &row.config) {
            row.label = crate::plan::run_label(base, config);
            row.seedless = crate::plan::seedless_label(base, config);
        }
    }

    /// Records the config a run of this session was started with.
    pub fn set_config(&mut self, id: &str, config: Config) {
        let Some(at) = self.rows.iter().position(|row| row.id == id) else { return };
        let mut row = self.rows[at].clone();
        row.config = Some(Box::new(config));
        self.relabel(&mut row);
        self.rows[at] = row;
    }

    pub fn get(&self, id: &str) -> Option<&KnownRun> {
        self.rows.iter().find(|row| row.id == id)
    }

    fn get_mut(&mut self, id: &str) -> Option<&mut KnownRun> {
        self.rows.iter_mut().find(|row| row.id == id)
    }

    /// Applies an event of the run `id` (the id comes from that run's `RunStarted`).
    pub fn apply(&mut self, id: Option<&str>, event: &TrainEvent) {
        if let TrainEvent::RunStarted(info) = event {
            let mut row = KnownRun::started(info);
            row.config = self.get(&info.run_id).and_then(|existing| existing.config.clone());
            self.relabel(&mut row);
            match self.get_mut(&info.run_id) {
                Some(existing) => *existing = row,
                None => self.rows.push(row),
            }
        } else if let Some(row) = id.and_then(|id| self.get_mut(id)) {
            row.apply(event);
        }
    }

    /// Adds the runs of `runs_dir` not already listed. Unreadable runs are logged and
    /// skipped: one broken directory must not hide the others.
    pub fn scan(&mut self, runs_dir: &Path) {
        for run in RunDir::list(runs_dir) {
            if self.get(&run.id).is_some() {
                continue;
            }
            match load_run(&run.path) {
                Ok(mut row) => {
                    self.relabel(&mut row);
                    self.rows.push(row)
                }
                Err(err) => tracing::warn!("skipping run {}: {err:#}", run.path.display()),
            }
        }
    }
}

/// Reads one earlier run directory into a row.
pub fn load_run(dir: &Path) -> Result<KnownRun> {
    let run = RunDir::at(dir);
    let config = run.read_config().ok();
    let label = config.as_ref().map_or("?".to_string(), |config| config.ablation.short_label());
    let mut row = KnownRun::new(run.id.clone(), label);
    row.config = config.map(Box::new);
    let mut ended = false;
    for event in read_events(&run.events())? {
        if let TrainEvent::RunStarted(info) = &event {
            row.label = info.ablation.short_label();
            row.seedless = row.label.clone();
        }
        ended |= matches!(
            event,
            TrainEvent::Finished(_) | TrainEvent::Stopped { .. } | TrainEvent::Failed { .. }
        );
        row.apply(&event);
    }
    if !ended {
        row.status = RunStatus::Interrupted;
    }
    if let Some(report) = run.read_report()? {
        row.macro_f1 = Some(report.macro_f1);
        row.weighted_f1 = Some(report.weighted_f1);
        row.per_class = report.per_class.into_iter().map(|c| (c.label, c.f1)).collect();
    }
    Ok(row)
}
