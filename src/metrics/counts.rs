//! Scores of one class from its counts, and their averages, as scikit-learn computes them
//! with `zero_division=0`: every undefined ratio is 0.

use super::ClassMetrics;

/// Precision, recall and F1 of one class from its true positives, the number of times it was
/// predicted and the number of times it is true.
pub(super) fn class_metrics(
    label: &str,
    tp: usize,
    predicted: usize,
    support: usize,
) -> ClassMetrics {
    ClassMetrics {
        label: label.to_string(),
        precision: ratio(tp, predicted),
        recall: ratio(tp, support),
        // 2tp / (2tp + fp + fn) = 2tp / (support + predicted): sklearn's own formula, which
        // avoids the rounding of 2PR / (P + R) and is 0 when the class is neither true nor
        // predicted.
        f1: ratio(2 * tp, support + predicted),
        support,
    }
}

pub(super) fn ratio(numerator: usize, denominator: usize) -> f64 {
    if denominator == 0 {
        0.0
    } else {
        numerator as f64 / denominator as f64
    }
}

/// Unweighted mean of the classes' F1 (every class of the label space counts, including
/// those that are neither true nor predicted).
pub(super) fn macro_f1(per_class: &[ClassMetrics]) -> f64 {
    if per_class.is_empty() {
        return 0.0;
    }
    per_class.iter().map(|c| c.f1).sum::<f64>() / per_class.len() as f64
}

/// Mean of the classes' F1 weighted by their support.
pub(super) fn weighted_f1(per_class: &[ClassMetrics]) -> f64 {
    let total: usize = per_class.iter().map(|c| c.support).sum();
    if total == 0 {
        return 0.0;
    }
    per_class.iter().map(|c| c.f1 * c.support as f64).sum::<f64>() / total as f64
}
