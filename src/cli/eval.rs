//! `memescope eval`: score a trained run on any labelled file, with the run's thresholds.

use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::config::Config;
use crate::metrics::{ClassMetrics, Metrics};
use crate::train::{
    build_model, decide, predict, prepare_eval, read_json, score, select_device, Report, RunDir,
    Targets,
};

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
    let metrics = evaluate(run_dir, data, images)?;
    let report = EvalReport {
        run: run_dir,
        data,
        samples: metrics.per_class.iter().map(|c| c.support).max().unwrap_or(0),
        macro_f1: metrics.macro_f1,
        weighted_f1: metrics.weighted_f1,
        per_class: &metrics.per_class,
        metrics: &metrics,
    };
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// The metrics of the run's best checkpoint on `data`.
pub fn evaluate(run_dir: &Path, data: &Path, images: Option<&Path>) -> Result<Metrics> {
    let run = RunDir::open(run_dir)?;
    let config = Config::load(&run.config(), &[])?;
    let report: Report = read_json(&run.report())
        .with_context(|| format!("{} has no completed epoch to evaluate", run.path.display()))?;
    let device = select_device(&config.train.device)?;
    let mut log = |event| tracing::info!(?event, "eval");
    let split = prepare_eval(&config, data, images, &device, &mut log)?;
    let space = &split.dataset.space;
    let (model, mut varmap) =
        build_model(&config, &split.features, space.len(), space.multi_label, &device)?;
    varmap
        .load(run.best_checkpoint())
        .with_context(|| format!("loading {}", run.best_checkpoint().display()))?;
    let targets = Targets::of(&split.dataset);
    let predictions = predict(&model, &split.features, &targets, 128, &device)?;
    let predicted =
        decide(&predictions.probabilities, space.multi_label, report.thresholds.as_deref());
    Ok(score(space, &targets.labels, &predicted))
}
