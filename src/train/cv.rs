//! Stratified k-fold cross-validation on the training file: an honest estimate (mean ± std
//! over folds) instead of one possibly lucky validation split.
//!
//! Each fold repeats the shipped recipe with its held-out part playing the hidden test
//! split: a fresh model trains on the other folds, picks its best epoch (and, multi-label,
//! its thresholds) on a validation set, and only then is scored once on the held-out part.
//! The validation set is the configured `data.validation` file when there is one (as in a
//! real run), otherwise a seeded stratified `data.val_fraction` of the fold's training part.
//! Picking the epoch on the held-out part itself would flatter every score.
//!
//! Features are computed (or fetched from the cache) once; each fold trains in its own run
//! directory `<runs>/cv-<stamp>/fold-<i>`, which `memescope eval` can read.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::prepare::{load_train, prepare_eval, Prepared, Split};
use super::provenance;
use super::resume::Start;
use super::run_log::RunLog;
use super::trained::load_trained_run;
use super::{select_device, train_on, StopFlag};
use crate::config::Config;
use crate::data::{fold_train_indices, stratified_folds, stratified_split};
use crate::events::TrainEvent;
use crate::metrics::{mean_std, Metrics};
use crate::runs::{write_json, write_predictions, CvDir, RunDir};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FoldResult {
    /// 1-based.
    pub fold: usize,
    pub train_samples: usize,
    pub val_samples: usize,
    /// Samples the best epoch (and thresholds) were chosen on.
    pub selection_samples: usize,
    pub best_epoch: usize,
    /// On the held-out part, with the best epoch's model.
    pub macro_f1: f64,
    pub weighted_f1: f64,
    /// On the selection samples (what the trainer reported; optimistic by construction).
    pub selection_macro_f1: f64,
    pub seconds: f64,
    pub run_dir: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CvSummary {
    pub dir: PathBuf,
    pub folds: Vec<FoldResult>,
    #[serde(flatten)]
    pub scores: FoldScores,
    /// Wall time of the whole cross-validation, feature loading included.
    pub seconds: f64,
}

/// The folds' held-out macro- and weighted-F1: mean and sample standard deviation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FoldScores {
    pub macro_f1_mean: f64,
    pub macro_f1_std: f64,
    pub weighted_f1_mean: f64,
    pub weighted_f1_std: f64,
}

impl FoldScores {
    /// From each fold's `(macro_f1, weighted_f1)`.
    pub fn of(folds: impl Iterator<Item = (f64, f64)>) -> Self {
        let (macro_f1, weighted_f1): (Vec<f64>, Vec<f64>) = folds.unzip();
        let (macro_f1_mean, macro_f1_std) = mean_std(&macro_f1);
        let (weighted_f1_mean, weighted_f1_std) = mean_std(&weighted_f1);
        Self { macro_f1_mean, macro_f1_std, weighted_f1_mean, weighted_f1_std }
    }
}

impl std::fmt::Display for FoldScores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "held-out macro-F1 {:.4} ± {:.4}   weighted-F1 {:.4} ± {:.4}",
            self.macro_f1_mean, self.macro_f1_std, self.weighted_f1_mean, self.weighted_f1_std
        )
    }
}

/// Runs `k`-fold cross-validation with folds drawn from `seed`. `emit` receives every
/// event of every fold with its 1-based fold number (0 for the preparation all folds share);
/// `cv.json` lands in the CV directory.
pub fn cross_validate(
    config: Config,
    k: usize,
    seed: u64,
    emit: &mut dyn FnMut(usize, &TrainEvent),
    stop: &StopFlag,
) -> Result<CvSummary> {
    let started = Instant::now();
    let config = config.absolutized()?;
    let device = select_device(&config.train.device)?;
    let loaded = load_train(&config, &device, &mut |event| emit(0, &event))?;
    if k < 2 || k > loaded.dataset.len() {
        bail!(
            "--folds must be between 2 and the {} training samples, got {k}",
            loaded.dataset.len()
        );
    }
    let folds = stratified_folds(&loaded.dataset, k, seed);
    let validation_file = match &config.data.validation {
        Some(path) => Some(prepare_eval(
            &config,
            path,
            config.data.images.as_deref(),
            &device,
            &mut |event| emit(0, &event),
        )?),
        None => None,
    };
    let cv_dir = CvDir::create(&config.paths.runs, &config.ablation)?;

    let mut results = Vec::with_capacity(k);
    for (index, held_out) in folds.iter().enumerate() {
        let fold = index + 1;
        let fold_started = Instant::now();
        let run = cv_dir.create_fold(fold)?;
        run.write_config(&config)?;
        provenance::begin_session(&run)?;
        let _logging_to_run_log = crate::logging::run_span(&run.log()).entered();
        provenance::record_models(&run, &config, loaded.report.text_only_reason.is_none());
        let fold_train = fold_train_indices(&folds, index);
        let prepared = match &validation_file {
            Some(validation) => Prepared {
                train: loaded.side(&fold_train)?,
                validation: validation.clone(),
                report: loaded.report.clone(),
            },
            None => {
                let (train, validation) = stratified_split(
                    &loaded.dataset.subset(&fold_train),
                    config.data.val_fraction,
                    seed.wrapping_add(fold as u64),
                );
                let pick = |idx: Vec<usize>| idx.iter().map(|&i| fold_train[i]).collect();
                let (train, validation): (Vec<usize>, Vec<usize>) = (pick(train), pick(validation));
                loaded.split(&train, &validation)?
            }
        };
        let mut forward = |event: &TrainEvent| {
            emit(fold, event);
            Ok(())
        };
        let mut log = RunLog::open(&run, &mut forward)?;
        let mut log_event = |event: TrainEvent| log.emit(event);
        let summary =
            train_on(&config, &run, Start::fresh(), &prepared, &device, &mut log_event, stop)
                .with_context(|| format!("fold {fold} of {k}"));
        provenance::end_session(&run);
        let summary = summary?;
        if !stop.stopped_a_run() {
            log.emit(TrainEvent::Finished(summary.clone()));
        }
        log.finish().with_context(|| format!("writing {}", run.events().display()))?;
        if stop.stopped_a_run() {
            bail!("cross-validation stopped during fold {fold}");
        }
        let held_out_metrics = score_held_out(&run, &loaded.side(held_out)?)
            .with_context(|| format!("scoring fold {fold} of {k} on its held-out part"))?;
        emit(
            fold,
            &TrainEvent::Stage {
                name: "held-out".into(),
                detail: format!(
                    "{} samples: macro-F1 {:.4}, weighted-F1 {:.4}",
                    held_out.len(),
                    held_out_metrics.macro_f1,
                    held_out_metrics.weighted_f1
                ),
            },
        );
        results.push(FoldResult {
            fold,
            train_samples: prepared.train.dataset.len(),
            val_samples: held_out.len(),
            selection_samples: prepared.validation.dataset.len(),
            best_epoch: summary.best_epoch,
            macro_f1: held_out_metrics.macro_f1,
            weighted_f1: held_out_metrics.weighted_f1,
            selection_macro_f1: summary.macro_f1,
            seconds: fold_started.elapsed().as_secs_f64(),
            run_dir: run.path.clone(),
        });
    }
    let summary = CvSummary {
        dir: cv_dir.path.clone(),
        scores: FoldScores::of(results.iter().map(|r| (r.macro_f1, r.weighted_f1))),
        folds: results,
        seconds: started.elapsed().as_secs_f64(),
    };
    write_json(&cv_dir.summary(), &summary)?;
    Ok(summary)
}

/// The metrics of the fold's best checkpoint on its held-out samples, decided as `eval`
/// decides (the thresholds chosen on validation, for multi-label data); each sample's
/// prediction is kept in the fold's `held-out.jsonl`.
fn score_held_out(run: &RunDir, held_out: &Split) -> Result<Metrics> {
    let evaluation = load_trained_run(&run.path)?.evaluate(held_out)?;
    write_predictions(&run.held_out_predictions(), &evaluation.predictions)?;
    Ok(evaluation.metrics)
}
