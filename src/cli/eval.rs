//! `memescope eval`: score a trained run on any labelled file, with the run's thresholds.

use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use crate::metrics::{ClassMetrics, Metrics};
use crate::train::{load_trained_run, prepare_eval, score, Targets};

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

pub fn run(run_dir: &Path, data: &Path, images: Option<&Path>) -> Result<()> {
    let Evaluation { samples, metrics } = evaluate(run_dir, data, images)?;
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

/// How the run's best checkpoint does on a labelled file.
pub struct Evaluation {
    pub samples: usize,
    pub metrics: Metrics,
}

/// The metrics of the run's best checkpoint on `data`.
pub fn evaluate(run_dir: &Path, data: &Path, images: Option<&Path>) -> Result<Evaluation> {
    let trained = load_trained_run(run_dir)?;
    let mut log = |event| tracing::info!(?event, "eval");
    let split = prepare_eval(&trained.config, data, images, &trained.device, &mut log)?;
    let probabilities = trained.probabilities(&split.features)?;
    let targets = Targets::of(&split.dataset);
    let metrics = score(&trained.space, &targets.labels, &trained.decide(&probabilities));
    Ok(Evaluation { samples: split.dataset.len(), metrics })
}
