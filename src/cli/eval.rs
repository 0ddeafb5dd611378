//! `memescope eval`: score a trained run on any labelled file, with the run's thresholds,
//! and optionally write each sample's prediction (the run directory's `predictions.jsonl`
//! format).

use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use crate::metrics::{ClassMetrics, Metrics};
use crate::runs::write_predictions;
use crate::train::{evaluate_run, Evaluation};

#[derive(Debug, Serialize)]
struct EvalReport<'a> {
    run: &'a Path,
    data: &'a Path,
    samples: usize,
    macro_f1: f64,
    weighted_f1: f64,
    per_class: &'a [ClassMetrics],
    metrics: &'a Metrics,
}

pub fn run(
    run_dir: &Path,
    data: &Path,
    images: Option<&Path>,
    predictions_out: Option<&Path>,
) -> Result<()> {
    let Evaluation { samples, metrics, predictions } = evaluate_run(run_dir, data, images)?;
    if let Some(path) = predictions_out {
        write_predictions(path, &predictions)?;
    }
    let report = EvalReport {
        run: run_dir,
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
