//! `memescope ensemble DIR DIR…`: several cross-validations averaged fold by fold, or
//! several trained runs averaged on their shared validation samples.

use std::path::PathBuf;

use anyhow::{bail, Result};

use crate::runs::CvDir;
use crate::train::{
    ensemble_cross_validations, ensemble_validations, EnsembleSummary, ValidationEnsemble,
};

pub fn run(dirs: &[PathBuf], json: bool) -> Result<()> {
    let is_cv = |dir: &PathBuf| CvDir { path: dir.clone() }.summary().is_file();
    let text = if dirs.iter().all(is_cv) {
        let summary = ensemble_cross_validations(dirs)?;
        match json {
            true => serde_json::to_string(&summary)? + "\n",
            false => render(&summary),
        }
    } else if dirs.iter().any(is_cv) {
        bail!("give either cross-validation directories (cv-*) or run directories, not both");
    } else {
        let summary = ensemble_validations(dirs)?;
        match json {
            true => serde_json::to_string(&summary)? + "\n",
            false => render_runs(&summary),
        }
    };
    print!("{text}");
    Ok(())
}

fn render_runs(summary: &ValidationEnsemble) -> String {
    let mut out = String::new();
    for (i, (member, f1)) in summary.members.iter().zip(&summary.member_macro_f1).enumerate() {
        out += &format!("run {}: {}  validation macro-F1 {f1:.4}\n", i + 1, member.display());
    }
    out += &format!(
        "ensemble on {} validation samples: macro-F1 {:.4}, weighted-F1 {:.4}\n",
        summary.samples, summary.macro_f1, summary.weighted_f1
    );
    out
}

fn render(summary: &EnsembleSummary) -> String {
    let mut out = String::new();
    for (i, member) in summary.members.iter().enumerate() {
        out += &format!("member {}: {}\n", i + 1, member.display());
    }
    let members: String = (1..=summary.members.len()).map(|i| format!("  member {i}")).collect();
    out += &format!("fold  held-out{members}  ensemble macro-F1  weighted-F1\n");
    for fold in &summary.folds {
        let scores: String = fold.member_macro_f1.iter().map(|f1| format!("  {f1:>8.4}")).collect();
        out += &format!(
            "{:>4}  {:>8}{scores}  {:>17.4}  {:>11.4}\n",
            fold.fold, fold.samples, fold.macro_f1, fold.weighted_f1
        );
    }
    out += &format!("ensemble {}   ({} folds)\n", summary.scores, summary.folds.len());
    out
}
