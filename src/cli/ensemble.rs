//! `memescope ensemble CV_DIR CV_DIR…`: several cross-validations averaged fold by fold.

use std::path::PathBuf;

use anyhow::Result;

use crate::train::{ensemble_cross_validations, EnsembleSummary};

pub fn run(cv_dirs: &[PathBuf], json: bool) -> Result<()> {
    let summary = ensemble_cross_validations(cv_dirs)?;
    if json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        print!("{}", render(&summary));
    }
    Ok(())
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
