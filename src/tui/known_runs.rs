//! Every run the Runs pane lists: those of this session (kept up to date from events) and
//! the others found in the runs directory (read through [`crate::runs::RunDir`]): earlier
//! runs, and runs that other processes or other machines are writing into a shared runs
//! folder (a sweep on a scheduler), followed at each scan for the events appended since.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};

use crate::config::Config;
use crate::events::{EpochRecord, EventLogTail, RunInfo, TrainEvent};
use crate::runs::{RunDir, RunStatus};

/// How long an unfinished run on disk may go without a new event and still count as
/// running. A training run appends an event every step, and preparation reports progress,
/// so a run silent for this long has most likely been killed (or its machine lost).
const SILENT_RUN_IS_INTERRUPTED: Duration = Duration::from_secs(600);

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
    /// Runs on disk without an ending yet, by id: followed for new events at each scan.
    unfinished: HashMap<String, UnfinishedRun>,
    /// Runs whose events reach the table directly ([`KnownRuns::apply`]: started or
    /// watched here), never read from disk.
    direct: HashSet<String>,
}

/// An unfinished run on disk and where its event log was read up to.
#[derive(Debug)]
struct UnfinishedRun {
    run: RunDir,
    tail: EventLogTail,
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
            // From now on its events come here; reading its log too would count them twice.
            self.direct.insert(info.run_id.clone());
            self.unfinished.remove(&info.run_id);
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

    /// Adds the runs of `runs_dir` not already listed, and brings the unfinished ones read
    /// earlier up to date with the events appended since. Unreadable runs are logged and
    /// skipped: one broken directory must not hide the others. Returns whether any row
    /// changed.
    pub fn scan(&mut self, runs_dir: &Path) -> bool {
        let now = SystemTime::now();
        let mut changed = false;
        let followed: Vec<String> = self.unfinished.keys().cloned().collect();
        for id in followed {
            let Some(mut unfinished) = self.unfinished.remove(&id) else { continue };
            // Archived rows are gone from the table: nothing left to follow.
            let Some(at) = self.rows.iter().position(|row| row.id == id) else { continue };
            let mut row = self.rows[at].clone();
            match catch_up(&mut row, &mut unfinished, now) {
                Ok(true) => {}
                Ok(false) => {
                    self.unfinished.insert(id, unfinished);
                }
                Err(err) => tracing::warn!("stopped following run {id}: {err:#}"),
            }
            self.relabel(&mut row);
            changed |= row != self.rows[at];
            self.rows[at] = row;
        }
        for run in RunDir::list(runs_dir) {
            if self.get(&run.id).is_some() {
                continue;
            }
            match open_run(&run.path, now) {
                Ok((mut row, unfinished)) => {
                    self.relabel(&mut row);
                    self.rows.push(row);
                    if let Some(unfinished) = unfinished {
                        self.unfinished.insert(run.id, unfinished);
                    }
                    changed = true;
                }
                Err(err) => tracing::warn!("skipping run {}: {err:#}", run.path.display()),
            }
        }
        changed
    }
}

/// Reads one run directory into a row.
pub fn load_run(dir: &Path) -> Result<KnownRun> {
    open_run(dir, SystemTime::now()).map(|(row, _)| row)
}

/// Reads one run directory into a row, and, while it has not ended, where to follow it from.
fn open_run(dir: &Path, now: SystemTime) -> Result<(KnownRun, Option<UnfinishedRun>)> {
    let run = RunDir::at(dir);
    let config = run.read_config().ok();
    let label = config.as_ref().map_or("?".to_string(), |config| config.ablation.short_label());
    let mut row = KnownRun::new(run.id.clone(), label);
    row.config = config.map(Box::new);
    let mut unfinished = UnfinishedRun { tail: EventLogTail::new(&run.events()), run };
    let ended = catch_up(&mut row, &mut unfinished, now)?;
    if !ended {
        // The best epoch so far (an interrupted run's report keeps it).
        take_report(&mut row, &unfinished.run)?;
    }
    Ok((row, (!ended).then_some(unfinished)))
}

/// Applies the events `unfinished` has appended since the last look; returns whether the
/// run has ended. An ended run's numbers come from its report; a run whose log has not
/// changed for longer than [`SILENT_RUN_IS_INTERRUPTED`] is shown as interrupted until it
/// writes again.
fn catch_up(row: &mut KnownRun, unfinished: &mut UnfinishedRun, now: SystemTime) -> Result<bool> {
    let events = unfinished.tail.poll()?;
    let path = unfinished.tail.path();
    let written = std::fs::metadata(path)
        .and_then(|meta| meta.modified())
        .with_context(|| format!("reading {}", path.display()))?;
    let mut ended = false;
    for event in &events {
        if let TrainEvent::RunStarted(info) = event {
            row.label = info.ablation.short_label();
            row.seedless = row.label.clone();
        }
        ended |= matches!(
            event,
            TrainEvent::Finished(_) | TrainEvent::Stopped { .. } | TrainEvent::Failed { .. }
        );
        row.apply(event);
    }
    if ended {
        take_report(row, &unfinished.run)?;
    } else {
        let silent = now.duration_since(written).unwrap_or_default();
        if silent > SILENT_RUN_IS_INTERRUPTED {
            row.status = RunStatus::Interrupted;
        }
    }
    Ok(ended)
}

/// The best epoch's numbers from the run's `report.json`, when it has one.
fn take_report(row: &mut KnownRun, run: &RunDir) -> Result<()> {
    if let Some(report) = run.read_report()? {
        row.macro_f1 = Some(report.macro_f1);
        row.weighted_f1 = Some(report.weighted_f1);
        row.per_class = report.per_class.into_iter().map(|c| (c.label, c.f1)).collect();
    }
    Ok(())
}
