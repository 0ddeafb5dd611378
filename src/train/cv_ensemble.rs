//! Ensembles of cross-validated setups, scored without training anything again: the
//! held-out predictions (`held-out.jsonl`) that each fold of several `memescope cv` runs
//! kept are averaged sample by sample, and each fold's average is scored as one model.
//! The members may differ in anything (text encoder, head, seed) but must share the folds:
//! the same data, fold count and fold seed, which each fold's sample ids check.
//!
//! Multi-label data: the decision thresholds are chosen again, as a run chooses them, on
//! the members' averaged predictions for the fold's validation samples (each fold run's
//! `predictions.jsonl`, its best epoch's), which the members share too (the same split).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::averaged::{average_predictions, read_member_predictions};
use super::cv::{CvSummary, FoldScores};
use super::evaluate::{decide, score, validation_thresholds};
use crate::data::LabelSpace;
use crate::runs::{read_json, CvDir, Prediction, Report, RunDir};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnsembleSummary {
    /// The cross-validation directories averaged, in the order given.
    pub members: Vec<PathBuf>,
    pub folds: Vec<EnsembleFold>,
    #[serde(flatten)]
    pub scores: FoldScores,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnsembleFold {
    /// 1-based.
    pub fold: usize,
    /// Held-out samples scored.
    pub samples: usize,
    /// Each member's own held-out macro-F1 on this fold (from its `cv.json`).
    pub member_macro_f1: Vec<f64>,
    pub macro_f1: f64,
    pub weighted_f1: f64,
}

/// Averages the cross-validations in `cv_dirs` fold by fold and scores the averages.
pub fn ensemble_cross_validations(cv_dirs: &[PathBuf]) -> Result<EnsembleSummary> {
    if cv_dirs.len() < 2 {
        bail!("an ensemble needs at least two cross-validation directories");
    }
    let cvs: Vec<CvDir> = cv_dirs.iter().map(|path| CvDir { path: path.clone() }).collect();
    let summaries =
        cvs.iter().map(|cv| read_json::<CvSummary>(&cv.summary())).collect::<Result<Vec<_>>>()?;
    let k = summaries[0].folds.len();
    for (cv, summary) in cvs.iter().zip(&summaries) {
        if summary.folds.len() != k {
            bail!(
                "{} has {} folds, {} has {k}: the cross-validations must share their folds",
                cv.path.display(),
                summary.folds.len(),
                cvs[0].path.display()
            );
        }
    }
    let mut folds = Vec::with_capacity(k);
    for fold in 1..=k {
        let runs: Vec<RunDir> = cvs.iter().map(|cv| cv.fold(fold)).collect();
        let (samples, macro_f1, weighted_f1) =
            score_fold(&runs).with_context(|| format!("fold {fold}"))?;
        folds.push(EnsembleFold {
            fold,
            samples,
            member_macro_f1: summaries.iter().map(|s| s.folds[fold - 1].macro_f1).collect(),
            macro_f1,
            weighted_f1,
        });
    }
    Ok(EnsembleSummary {
        members: cv_dirs.to_vec(),
        scores: FoldScores::of(folds.iter().map(|f| (f.macro_f1, f.weighted_f1))),
        folds,
    })
}

/// The ensemble's held-out sample count, macro-F1 and weighted-F1 on one fold, whose run
/// directories (one per member) are `runs`.
fn score_fold(runs: &[RunDir]) -> Result<(usize, f64, f64)> {
    let report = read_json::<Report>(&runs[0].report())?;
    let space =
        LabelSpace { name: report.dataset, labels: report.labels, multi_label: report.multi_label };
    let held_out = member_predictions(runs, RunDir::held_out_predictions)?;
    let (probabilities, truth) = average_predictions(&held_out, &space)?;
    let thresholds = if space.multi_label {
        let validation = member_predictions(runs, RunDir::predictions)?;
        let (probabilities, truth) = average_predictions(&validation, &space)?;
        Some(validation_thresholds(&probabilities, &truth, space.len()))
    } else {
        None
    };
    let predicted = decide(&probabilities, space.multi_label, thresholds.as_deref());
    let metrics = score(&space, &truth, &predicted);
    Ok((truth.len(), metrics.macro_f1, metrics.weighted_f1))
}

/// Each member's predictions from the file `which` names in its run.
fn member_predictions(
    runs: &[RunDir],
    which: fn(&RunDir) -> PathBuf,
) -> Result<Vec<Vec<Prediction>>> {
    let paths: Vec<PathBuf> = runs.iter().map(which).collect();
    read_member_predictions(
        &paths,
        "cross-validations made before folds kept their held-out predictions lack it; run \
         `memescope cv` again",
    )
}
