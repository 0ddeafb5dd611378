//! Per-label decision thresholds for multi-label probabilities.

use super::counts::ratio;

/// The thresholds tried: 0.05, 0.10, …, 0.95.
fn grid() -> impl Iterator<Item = f32> {
    (1..=19).map(|k| k as f32 / 20.0)
}

/// Whether a probability counts as a "yes" at `threshold`. Every caller decides with this
/// rule, so that thresholds chosen on validation mean the same when applied.
pub fn decide(probability: f32, threshold: f32) -> bool {
    probability >= threshold
}

/// The yes/no decisions of `probabilities[i][label]` under one threshold per label.
pub fn apply_thresholds(probabilities: &[Vec<f32>], thresholds: &[f32]) -> Vec<Vec<bool>> {
    probabilities
        .iter()
        .map(|row| row.iter().zip(thresholds).map(|(&p, &t)| decide(p, t)).collect())
        .collect()
}

/// For each label, the threshold of the grid 0.05..=0.95 (step 0.05) that maximises that
/// label's F1 on the given samples; among equally good thresholds the one closest to 0.5 wins
/// (the lower one if two are equally close), so a label with no signal keeps 0.5.
///
/// # Panics
/// If `probabilities` and `truth` differ in shape.
pub fn best_thresholds(probabilities: &[Vec<f32>], truth: &[Vec<bool>]) -> Vec<f32> {
    assert_eq!(probabilities.len(), truth.len(), "one probability row per sample");
    let n_labels = probabilities.first().map_or(0, Vec::len);
    assert!(
        probabilities.iter().zip(truth).all(|(p, t)| p.len() == n_labels && t.len() == n_labels),
        "every row needs one value per label"
    );
    // Visit the grid from 0.5 outwards, so a strictly-better test keeps the closest on ties.
    let mut order: Vec<f32> = grid().collect();
    order.sort_by(|a, b| (a - 0.5).abs().total_cmp(&(b - 0.5).abs()).then(a.total_cmp(b)));
    (0..n_labels)
        .map(|label| {
            let mut best = (f64::NEG_INFINITY, 0.5);
            for &threshold in &order {
                let f1 = label_f1(probabilities, truth, label, threshold);
                if f1 > best.0 {
                    best = (f1, threshold);
                }
            }
            best.1
        })
        .collect()
}

fn label_f1(probabilities: &[Vec<f32>], truth: &[Vec<bool>], label: usize, threshold: f32) -> f64 {
    let (mut tp, mut predicted, mut support) = (0, 0, 0);
    for (p_row, t_row) in probabilities.iter().zip(truth) {
        let (p, t) = (decide(p_row[label], threshold), t_row[label]);
        tp += usize::from(p && t);
        predicted += usize::from(p);
        support += usize::from(t);
    }
    ratio(2 * tp, support + predicted)
}
