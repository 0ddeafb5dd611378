//! `report.json` (the best epoch's validation metrics) and `state.json` (for resuming).

use serde::{Deserialize, Serialize};

use crate::data::LabelSpace;
use crate::metrics::{ClassMetrics, Metrics};

/// Where a run stands. `report.json` holds it as the lower-case name (`"finished"`), which
/// is also what [`RunStatus::label`] shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
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
    /// `running` until the run ends as `finished`, `stopped` or `failed`.
    pub status: RunStatus,
}

impl Report {
    /// The labels the run decides between, as it recorded them.
    pub fn label_space(&self) -> LabelSpace {
        LabelSpace {
            name: self.dataset.clone(),
            labels: self.labels.clone(),
            multi_label: self.multi_label,
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_is_stored_as_its_label() {
        for status in [
            RunStatus::Preparing,
            RunStatus::Running,
            RunStatus::Finished,
            RunStatus::Stopped,
            RunStatus::Failed,
            RunStatus::Interrupted,
        ] {
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.label()));
            assert_eq!(serde_json::from_str::<RunStatus>(&json).unwrap(), status);
        }
    }

    #[test]
    fn reports_written_with_a_string_status_still_read() {
        // The shape of report.json before the status was typed.
        let text = r#"{"dataset":"restore","labels":["a","b"],"multi_label":false,
            "best_epoch":2,"macro_f1":0.5,"weighted_f1":0.6,"per_class":[],
            "metrics":{"macro_f1":0.5,"weighted_f1":0.6,"per_class":[],"accuracy":0.7},
            "thresholds":null,"epochs_run":3,"seconds":1.5,"status":"stopped"}"#;
        let report: Report = serde_json::from_str(text).unwrap();
        assert_eq!(report.status, RunStatus::Stopped);
        assert!(serde_json::to_string(&report).unwrap().contains(r#""status":"stopped""#));
    }
}
