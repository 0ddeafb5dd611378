//! What the dashboard knows about the run it shows, folded from that run's events.

use std::collections::{BTreeMap, VecDeque};

use crate::events::{DeviceMemory, EpochRecord, Misclassified, RunInfo, RunSummary, TrainEvent};

use crate::runs::RunStatus;

/// Steps kept for the loss chart; older ones are dropped so a long run stays bounded.
pub const MAX_STEPS: usize = 10_000;
/// Weight of the newest step in the smoothed loss line.
const EMA_ALPHA: f32 = 0.05;

#[derive(Debug, Clone, PartialEq)]
pub struct StepPoint {
    pub step: usize,
    pub loss: f32,
    /// Exponential moving average of the loss up to this step.
    pub smoothed: f32,
    /// The learning rate of the step (the schedule the Loss pane can show).
    pub lr: f64,
    pub components: BTreeMap<String, f32>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    pub stage: String,
    pub done: usize,
    pub total: usize,
    pub per_second: f64,
}

#[derive(Debug, Default)]
pub struct RunView {
    pub info: Option<RunInfo>,
    pub status: Option<RunStatus>,
    pub steps: VecDeque<StepPoint>,
    /// Every epoch; only the latest keeps its misclassified samples (the Errors pane
    /// shows no other, and they are the bulk of an epoch's size).
    pub epochs: Vec<EpochRecord>,
    /// The global step at which each epoch ended, parallel to `epochs`.
    pub epoch_end_steps: Vec<usize>,
    pub epoch: usize,
    pub global_step: usize,
    pub samples_per_second: f64,
    pub lr: f64,
    /// GPU memory in use after the latest step (CUDA runs only).
    pub device_memory: Option<DeviceMemory>,
    /// The latest `Stage` as "name: detail" (cache hits and misses come this way).
    pub stage: Option<String>,
    pub progress: Option<Progress>,
    pub summary: Option<RunSummary>,
    pub failure: Option<String>,
    pub stop_reason: Option<String>,
    /// Batch size of a run started here (unknown when watching), for the ETA before the
    /// first epoch has been timed.
    pub batch_size: Option<usize>,
}

impl RunView {
    pub fn preparing(batch_size: Option<usize>) -> Self {
        Self { status: Some(RunStatus::Preparing), batch_size, ..Self::default() }
    }

    pub fn run_id(&self) -> Option<&str> {
        self.info.as_ref().map(|info| info.run_id.as_str())
    }

    pub fn labels(&self) -> &[String] {
        self.info.as_ref().map(|info| info.labels.as_slice()).unwrap_or(&[])
    }

    pub fn latest_epoch(&self) -> Option<&EpochRecord> {
        self.epochs.last()
    }

    pub fn previous_epoch(&self) -> Option<&EpochRecord> {
        self.epochs.len().checked_sub(2).map(|i| &self.epochs[i])
    }

    pub fn best_epoch(&self) -> Option<&EpochRecord> {
        self.epochs.iter().rev().find(|epoch| epoch.is_best)
    }

    pub fn misclassified(&self) -> &[Misclassified] {
        self.latest_epoch().map(|epoch| epoch.misclassified.as_slice()).unwrap_or(&[])
    }

    pub fn apply(&mut self, event: &TrainEvent) {
        match event {
            TrainEvent::RunStarted(info) => {
                let batch_size = self.batch_size;
                *self = Self::preparing(batch_size);
                self.info = Some(info.clone());
            }
            TrainEvent::Stage { name, detail } => {
                self.stage = Some(if detail.is_empty() {
                    name.clone()
                } else {
                    format!("{name}: {detail}")
                });
                self.progress = None;
            }
            TrainEvent::Progress { stage, done, total, per_second } => {
                self.progress = Some(Progress {
                    stage: stage.clone(),
                    done: *done,
                    total: *total,
                    per_second: *per_second,
                });
            }
            TrainEvent::Step(step) => {
                self.status = Some(RunStatus::Running);
                self.progress = None;
                self.epoch = step.epoch;
                self.global_step = step.global_step;
                self.samples_per_second = step.samples_per_second;
                self.lr = step.lr;
                self.device_memory = step.device_memory;
                let smoothed = match self.steps.back() {
                    Some(last) => last.smoothed + EMA_ALPHA * (step.loss - last.smoothed),
                    None => step.loss,
                };
                if self.steps.len() == MAX_STEPS {
                    self.steps.pop_front();
                }
                self.steps.push_back(StepPoint {
                    step: step.global_step,
                    loss: step.loss,
                    smoothed,
                    lr: step.lr,
                    components: step.components.clone(),
                });
            }
            TrainEvent::Epoch(epoch) => {
                if let Some(previous) = self.epochs.last_mut() {
                    previous.misclassified = Vec::new();
                }
                self.epoch = epoch.epoch;
                self.epochs.push((**epoch).clone());
                self.epoch_end_steps.push(self.global_step);
            }
            TrainEvent::CheckpointSaved { epoch, best, .. } => {
                let kind = if *best { "best checkpoint" } else { "checkpoint" };
                self.stage = Some(format!("saved {kind} of epoch {epoch}"));
            }
            TrainEvent::Finished(summary) => {
                self.status = Some(RunStatus::Finished);
                self.summary = Some(summary.clone());
            }
            TrainEvent::Stopped { reason, .. } => {
                self.status = Some(RunStatus::Stopped);
                self.stop_reason = Some(reason.clone());
            }
            TrainEvent::Failed { message } => {
                self.status = Some(RunStatus::Failed);
                self.failure = Some(message.clone());
            }
        }
    }

    /// Seconds left, from the mean epoch time once an epoch is done, else from the
    /// throughput and batch size; `None` when neither is known.
    pub fn eta_seconds(&self) -> Option<f64> {
        let info = self.info.as_ref()?;
        let total_steps = info.epochs * info.steps_per_epoch;
        let remaining = total_steps.saturating_sub(self.global_step) as f64;
        let seconds_per_step = if !self.epochs.is_empty() && info.steps_per_epoch > 0 {
            let mean =
                self.epochs.iter().map(|e| e.seconds).sum::<f64>() / self.epochs.len() as f64;
            mean / info.steps_per_epoch as f64
        } else {
            let batch = self.batch_size? as f64;
            if self.samples_per_second <= 0.0 {
                return None;
            }
            batch / self.samples_per_second
        };
        Some(remaining * seconds_per_step)
    }
}
