//! Classification metrics as the published tables report them.
//!
//! Single-label: per-class precision/recall/F1, macro and support-weighted F1, and the
//! confusion matrix. Multi-label: the same label-wise metrics over the binary decision of
//! each label, plus sample-wise F1.

mod counts;
mod multi_label;
mod single_label;
mod spread;
mod thresholds;

pub use multi_label::multi_label_metrics;
pub use single_label::single_label_metrics;
pub use spread::mean_std;
pub use thresholds::{apply_thresholds, best_thresholds, decide};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    pub label: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Number of true instances of the class.
    pub support: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub macro_f1: f64,
    pub weighted_f1: f64,
    pub per_class: Vec<ClassMetrics>,
    /// Single-label only: `confusion[true][predicted]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confusion: Option<Vec<Vec<usize>>>,
    /// Multi-label only: mean over samples of the F1 of their label sets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples_f1: Option<f64>,
    /// Single-label: accuracy; multi-label: exact-match ratio.
    pub accuracy: f64,
}

impl Metrics {
    /// The reference's model-selection rule: harmonic mean of macro- and weighted-F1.
    pub fn selection_score(&self) -> f64 {
        harmonic_mean(self.macro_f1, self.weighted_f1)
    }
}

pub fn harmonic_mean(a: f64, b: f64) -> f64 {
    if a + b == 0.0 {
        0.0
    } else {
        2.0 * a * b / (a + b)
    }
}
