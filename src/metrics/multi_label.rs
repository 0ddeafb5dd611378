//! Metrics of multi-label predictions (a yes/no decision per label per sample).

use super::counts::{class_metrics, macro_f1, ratio, weighted_f1};
use super::Metrics;

/// Label-wise precision/recall/F1/support, macro- and weighted-F1, sample-wise F1 and the
/// exact-match ratio. `truth[i][l]` says whether sample `i` has label `l`.
///
/// # Panics
/// If `truth` and `predicted` differ in shape or a row's length differs from `labels`'.
pub fn multi_label_metrics(
    labels: &[String],
    truth: &[Vec<bool>],
    predicted: &[Vec<bool>],
) -> Metrics {
    assert_eq!(truth.len(), predicted.len(), "one prediction per sample");
    let n = labels.len();
    let (mut tp, mut times_predicted, mut support) = (vec![0; n], vec![0; n], vec![0; n]);
    let (mut exact, mut samples_f1_sum) = (0usize, 0.0f64);
    for (t_row, p_row) in truth.iter().zip(predicted) {
        assert!(t_row.len() == n && p_row.len() == n, "every row needs one decision per label");
        let mut row_tp = 0;
        for l in 0..n {
            let (t, p) = (t_row[l], p_row[l]);
            tp[l] += usize::from(t && p);
            times_predicted[l] += usize::from(p);
            support[l] += usize::from(t);
            row_tp += usize::from(t && p);
        }
        exact += usize::from(t_row == p_row);
        let row_true = t_row.iter().filter(|&&b| b).count();
        let row_predicted = p_row.iter().filter(|&&b| b).count();
        // A sample with no true and no predicted label scores 0 (sklearn, zero_division=0).
        samples_f1_sum += ratio(2 * row_tp, row_true + row_predicted);
    }
    let per_class: Vec<_> = labels
        .iter()
        .enumerate()
        .map(|(l, label)| class_metrics(label, tp[l], times_predicted[l], support[l]))
        .collect();
    let n_samples = truth.len();
    Metrics {
        macro_f1: macro_f1(&per_class),
        weighted_f1: weighted_f1(&per_class),
        per_class,
        confusion: None,
        samples_f1: Some(if n_samples == 0 { 0.0 } else { samples_f1_sum / n_samples as f64 }),
        accuracy: ratio(exact, n_samples),
    }
}
