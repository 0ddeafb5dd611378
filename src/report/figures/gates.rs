//! How the mixture of experts routes each true class at a run's best epoch: the mean gate
//! weight of every expert over the validation samples of the class.

use super::heatmap::Heatmap;
use crate::report::loaded::ReportedRun;

/// `None` for a run without gates (mixture of experts off, or no completed epoch).
pub fn gate_heatmap(run: &ReportedRun) -> Option<Heatmap> {
    let gates = run.gates.as_ref()?;
    let labels = run.labels();
    let mut rows: Vec<String> = labels.into_iter().take(gates.per_class.len()).collect();
    rows.push("all samples".into());
    let mut shade: Vec<Vec<f64>> =
        gates.per_class.iter().map(|row| row.iter().map(|&w| f64::from(w)).collect()).collect();
    shade.push(gates.per_expert.iter().map(|&w| f64::from(w)).collect());
    let experts = gates.per_expert.len();
    let cells = shade.iter().map(|row| row.iter().map(|w| format!("{w:.2}")).collect()).collect();
    // Weights of one sample sum to 1, so with k experts they hover around 1/k: scale the
    // colours to the range actually seen, which the colour bar states.
    let (low, high) = shade
        .iter()
        .flatten()
        .fold((f64::MAX, f64::MIN), |(low, high), &w| (low.min(w), high.max(w)));
    let epoch = run
        .report
        .as_ref()
        .map_or_else(|| "last epoch".into(), |r| format!("best epoch {}", r.best_epoch));
    Some(Heatmap {
        title: format!("Gate usage per class: {}", run.name),
        subtitle: format!(
            "mean gate weight of each expert over the validation samples of a class, {epoch}"
        ),
        row_title: "true class".into(),
        column_title: "expert".into(),
        rows,
        columns: (1..=experts).map(|e| format!("expert {e}")).collect(),
        shade,
        cells,
        scale: (low.min(high), high, "mean gate weight".into()),
    })
}
