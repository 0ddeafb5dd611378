//! Every run the Runs pane lists: those of this session (kept up to date from events) and
//! earlier ones found in the runs directory (`<runs>/<id>/{config.toml,events.jsonl,report.json}`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::config::Config;
use crate::events::{read_events, EpochRecord, RunInfo, TrainEvent};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    /// Loading data and encoding, before the first step.
    Preparing,
    Running,
    Finished,
    Stopped,
    Failed,
    /// An earlier run whose log ends without a final event (killed, or still running
    /// in another process).
    Interrupted,
}

impl RunStatus {
    pub fn label(self) -> &'static str {
        match self {
            RunStatus::Preparing => "preparing",
            RunStatus::Running => "running",
            RunStatus::Finished => "finished",
            RunStatus::Stopped => "stopped",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
        }
    }

    pub fn is_active(self) -> bool {
        matches!(self, RunStatus::Preparing | RunStatus::Running)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunRow {
    pub id: String,
    /// The ablation switches that were off (`Ablation::short_label`).
    pub label: String,
    pub macro_f1: Option<f64>,
    pub weighted_f1: Option<f64>,
    /// F1 per class of the best epoch, by label.
    pub per_class: Vec<(String, f64)>,
    pub seconds: Option<f64>,
    pub status: RunStatus,
}

impl RunRow {
    fn new(id: String, label: String) -> Self {
        Self {
            id,
            label,
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

/// What a finished run writes next to its events: the best epoch's scores.
#[derive(Debug, Deserialize)]
struct Report {
    macro_f1: f64,
    weighted_f1: f64,
    per_class: Vec<ReportClass>,
}

#[derive(Debug, Deserialize)]
struct ReportClass {
    label: String,
    f1: f64,
}

#[derive(Debug, Default)]
pub struct RunTable {
    pub rows: Vec<RunRow>,
}

impl RunTable {
    pub fn get(&self, id: &str) -> Option<&RunRow> {
        self.rows.iter().find(|row| row.id == id)
    }

    fn get_mut(&mut self, id: &str) -> Option<&mut RunRow> {
        self.rows.iter_mut().find(|row| row.id == id)
    }

    /// Applies an event of the run `id` (the id comes from that run's `RunStarted`).
    pub fn apply(&mut self, id: Option<&str>, event: &TrainEvent) {
        if let TrainEvent::RunStarted(info) = event {
            let row = RunRow::started(info);
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
        let Ok(entries) = std::fs::read_dir(runs_dir) else {
            return;
        };
        let mut dirs: Vec<PathBuf> = entries
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.join("events.jsonl").is_file())
            .collect();
        dirs.sort();
        for dir in dirs {
            let id = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if self.get(&id).is_some() {
                continue;
            }
            match load_run(&dir) {
                Ok(row) => self.rows.push(row),
                Err(err) => tracing::warn!("skipping run {}: {err:#}", dir.display()),
            }
        }
    }
}

/// Reads one earlier run directory into a row.
pub fn load_run(dir: &Path) -> Result<RunRow> {
    let id = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let label = std::fs::read_to_string(dir.join("config.toml"))
        .ok()
        .and_then(|text| Config::from_toml_str(&text).ok())
        .map(|config| config.ablation.short_label())
        .unwrap_or_else(|| "?".to_string());
    let mut row = RunRow::new(id.clone(), label);
    let mut ended = false;
    for event in read_events(&dir.join("events.jsonl"))? {
        if let TrainEvent::RunStarted(info) = &event {
            row.label = info.ablation.short_label();
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
    let report_path = dir.join("report.json");
    if report_path.is_file() {
        let text = std::fs::read_to_string(&report_path)
            .with_context(|| format!("reading {}", report_path.display()))?;
        let report: Report = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a run report", report_path.display()))?;
        row.macro_f1 = Some(report.macro_f1);
        row.weighted_f1 = Some(report.weighted_f1);
        row.per_class = report.per_class.into_iter().map(|c| (c.label, c.f1)).collect();
    }
    Ok(row)
}
