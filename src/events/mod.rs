//! The typed events through which the trainer reports to the world.
//!
//! The trainer never touches the terminal and the dashboard never touches tensors: they
//! share only this vocabulary. Every event is also one line of a run's `events.jsonl`,
//! so a run can be followed live or replayed from the file alone.

mod sink;
mod tail;

pub use sink::{ChannelSink, EventSink, Fanout, JsonlSink, LoggedEvent, VecSink};
pub use tail::{read_events, read_logged_events, EventLogTail};

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::{Ablation, Precision};
use crate::metrics::Metrics;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum TrainEvent {
    RunStarted(RunInfo),
    /// A phase of preparation (loading data, encoding, cache lookups) with a readable detail.
    Stage {
        name: String,
        detail: String,
    },
    /// Progress inside a long stage such as encoding.
    Progress {
        stage: String,
        done: usize,
        total: usize,
        per_second: f64,
    },
    Step(StepRecord),
    Epoch(Box<EpochRecord>),
    CheckpointSaved {
        epoch: usize,
        path: PathBuf,
        best: bool,
    },
    Finished(RunSummary),
    /// The user asked the run to stop; the run directory is consistent.
    Stopped {
        epoch: usize,
        reason: String,
    },
    Failed {
        message: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    pub run_id: String,
    pub run_dir: PathBuf,
    pub dataset: String,
    pub labels: Vec<String>,
    pub multi_label: bool,
    pub train_samples: usize,
    pub val_samples: usize,
    /// Samples whose image was missing or undecodable and is masked out.
    pub masked_images: usize,
    pub device: String,
    /// The precision the run computes in (`bf16` only on CUDA; absent in older logs: f32).
    #[serde(default)]
    pub precision: Precision,
    pub text_encoder: String,
    pub vision_encoder: Option<String>,
    /// Why the run is text-only, when it is.
    pub text_only_reason: Option<String>,
    pub ablation: Ablation,
    pub epochs: usize,
    pub steps_per_epoch: usize,
    /// Trainable parameters of the fusion model.
    pub parameters: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    pub epoch: usize,
    pub global_step: usize,
    /// The total loss that was back-propagated.
    pub loss: f32,
    /// Its parts by name: `classification`, `contrastive_text_image`, `load_balance`, ...
    pub components: BTreeMap<String, f32>,
    pub lr: f64,
    /// The step's batch: the last of an epoch, or of a length bucket, can be short.
    #[serde(default)]
    pub samples: usize,
    pub samples_per_second: f64,
    /// Memory in use on the GPU the run trains on, after the step; `None` on the CPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_memory: Option<DeviceMemory>,
}

/// A GPU's memory in use (by every process on it, as `nvidia-smi` counts) and its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceMemory {
    pub used_bytes: u64,
    pub total_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub train_loss: f32,
    pub val_loss: f32,
    pub metrics: Metrics,
    /// Multi-label only: the per-class decision thresholds chosen on validation.
    pub thresholds: Option<Vec<f32>>,
    pub gates: Option<GateUsage>,
    /// Misclassified validation samples, most confident mistakes first (bounded).
    pub misclassified: Vec<Misclassified>,
    /// Whether this epoch is the best so far by the selection rule.
    pub is_best: bool,
    pub seconds: f64,
}

/// Mean softmax gate weight of each expert, overall and per true class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateUsage {
    pub per_expert: Vec<f32>,
    /// `per_class[class][expert]`.
    pub per_class: Vec<Vec<f32>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Misclassified {
    pub sample_id: String,
    pub text: String,
    pub reasoning: Option<String>,
    pub image: Option<PathBuf>,
    /// Label indices.
    pub truth: Vec<usize>,
    pub predicted: Vec<usize>,
    /// One probability per label.
    pub probabilities: Vec<f32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub run_dir: PathBuf,
    pub best_epoch: usize,
    pub epochs_run: usize,
    pub macro_f1: f64,
    pub weighted_f1: f64,
    pub seconds: f64,
}
