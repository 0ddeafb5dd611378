//! The confusion matrix of a single-label run's best epoch: counts, shaded by the share of
//! each true class (so rare classes read as clearly as common ones).

use super::heatmap::Heatmap;
use crate::report::loaded::ReportedRun;

/// `None` for a run without a confusion matrix (multi-label, or no completed epoch).
pub fn confusion_heatmap(run: &ReportedRun) -> Option<Heatmap> {
    let report = run.report.as_ref()?;
    let matrix = report.metrics.confusion.as_ref()?;
    let shade = matrix
        .iter()
        .map(|row| {
            let total = row.iter().sum::<usize>().max(1) as f64;
            row.iter().map(|&n| n as f64 / total).collect()
        })
        .collect::<Vec<Vec<f64>>>();
    let cells = matrix
        .iter()
        .zip(&shade)
        .map(|(row, shares)| {
            row.iter()
                .zip(shares)
                .map(|(n, share)| format!("{n} ({:.0}%)", share * 100.0))
                .collect()
        })
        .collect();
    let samples: usize = matrix.iter().flatten().sum();
    Some(Heatmap {
        title: format!("Confusion matrix: {}", run.name),
        subtitle: format!(
            "{} validation samples, best epoch {}; cells: count (share of the true class)",
            samples, report.best_epoch
        ),
        row_title: "true class".into(),
        column_title: "predicted class".into(),
        rows: report.labels.clone(),
        columns: report.labels.clone(),
        shade,
        cells,
        scale: (0.0, 1.0, "share of the true class".into()),
    })
}
