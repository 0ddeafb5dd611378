//! Metrics of single-label predictions (one class per sample).

use super::counts::{class_metrics, macro_f1, ratio, weighted_f1};
use super::Metrics;

/// Per-class precision/recall/F1/support, macro- and weighted-F1, accuracy and the confusion
/// matrix (`confusion[true][predicted]`) of class indices into `labels`.
///
/// # Panics
/// If `truth` and `predicted` differ in length or hold an index outside `labels`.
pub fn single_label_metrics(labels: &[String], truth: &[usize], predicted: &[usize]) -> Metrics {
    assert_eq!(truth.len(), predicted.len(), "one prediction per sample");
    let n = labels.len();
    let mut confusion = vec![vec![0usize; n]; n];
    for (&t, &p) in truth.iter().zip(predicted) {
        assert!(t < n && p < n, "class index out of range: truth {t}, predicted {p}, {n} classes");
        confusion[t][p] += 1;
    }
    let per_class: Vec<_> = labels
        .iter()
        .enumerate()
        .map(|(c, label)| {
            let support = confusion[c].iter().sum();
            let times_predicted = confusion.iter().map(|row| row[c]).sum();
            class_metrics(label, confusion[c][c], times_predicted, support)
        })
        .collect();
    let correct = (0..n).map(|c| confusion[c][c]).sum();
    Metrics {
        macro_f1: macro_f1(&per_class),
        weighted_f1: weighted_f1(&per_class),
        per_class,
        confusion: Some(confusion),
        samples_f1: None,
        accuracy: ratio(correct, truth.len()),
    }
}
