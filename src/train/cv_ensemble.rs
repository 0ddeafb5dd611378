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

use super::averaged::score_members;
use super::cv::{CvSummary, FoldScores};
use crate::runs::{read_json, CvDir, RunDir};

/// Why a fold's `held-out.jsonl` may be missing.
const BEFORE_HELD_OUT: &str =
    "cross-validations made before folds kept their held-out predictions lack it; run \
     `memescope cv` again";

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
            score_members(&runs, RunDir::held_out_predictions, BEFORE_HELD_OUT)
                .with_context(|| format!("fold {fold}"))?;
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
