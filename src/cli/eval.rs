//! `memescope eval`: score a trained run (or several as one ensemble) on any labelled file,
//! with the run's thresholds, and optionally write each sample's prediction (the run
//! directory's `predictions.jsonl` format).

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Serialize;

use crate::metrics::{ClassMetrics, Metrics};
use crate::runs::write_predictions;
use crate::train::{evaluate_runs, Evaluation};

#[derive(Debug, Serialize)]
struct EvalReport<'a> {
    /// The run evaluated, or (several) the ensemble's runs.
    runs: &'a [PathBuf],
    data: &'a Path,
    samples: usize,
    macro_f1: f64,
    weighted_f1: f64,
    per_class: &'a [ClassMetrics],
    metrics: &'a Metrics,
}

pub fn run(
    run_dirs: &[PathBuf],
    data: &Path,
    images: Option<&Path>,
    predictions_out: Option<&Path>,
) -> Result<()> {
    let Evaluation { samples, metrics, predictions } = evaluate_runs(run_dirs, data, images)?;
    if let Some(path) = predictions_out {
        write_predictions(path, &predictions)?;
    }
    let report = EvalReport {
        runs: run_dirs,
        data,
        samples,
        macro_f1: metrics.macro_f1,
        weighted_f1: metrics.weighted_f1,
        per_class: &metrics.per_class,
        metrics: &metrics,
    };
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
