//! `report.json` (the best epoch's validation metrics) and `state.json` (for resuming).

use serde::{Deserialize, Serialize};

use crate::metrics::{ClassMetrics, Metrics};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub dataset: String,
    pub labels: Vec<String>,
    pub multi_label: bool,
    /// 1-based epoch whose weights are in `best.safetensors`.
    pub best_epoch: usize,
    pub macro_f1: f64,
    pub weighted_f1: f64,
    pub per_class: Vec<ClassMetrics>,
    pub metrics: Metrics,
    /// Multi-label only: per-class decision thresholds chosen on validation.
    pub thresholds: Option<Vec<f32>>,
    pub epochs_run: usize,
    pub seconds: f64,
    /// `running`, `finished`, `stopped`, `failed`.
    pub status: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Epochs fully completed; `last.safetensors` holds the weights after this many.
    pub completed_epochs: usize,
    pub global_step: usize,
    pub best_epoch: usize,
    pub best_score: f64,
    pub epochs_without_improvement: usize,
    pub seconds: f64,
    /// Learning-rate multiplier of reduce-on-plateau.
    pub lr_scale: f64,
}
