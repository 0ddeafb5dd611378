//! Metrics against numbers computed independently with scikit-learn 1.9.1.

use memescope::data::{Dataset, DatasetFormat};
use memescope::metrics::{
    apply_thresholds, best_thresholds, multi_label_metrics, single_label_metrics,
};
use memescope::train::score;

const TOLERANCE: f64 = 1e-12;

fn assert_close(actual: &[f64], expected: &[f64], what: &str) {
    assert_eq!(actual.len(), expected.len(), "{what}: length");
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert!((a - e).abs() < TOLERANCE, "{what}[{i}]: got {a}, sklearn says {e}");
    }
}

fn names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("class {i}")).collect()
}

/// Expected values printed by:
/// ```python
/// from sklearn.metrics import (
///     precision_recall_fscore_support, f1_score, accuracy_score, confusion_matrix)
/// # class 5 is true twice but never predicted; class 4 is predicted twice but never true
/// truth = [0, 0, 0, 1, 1, 1, 1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 5, 5, 0, 2]
/// pred  = [0, 1, 0, 1, 1, 2, 4, 1, 1, 2, 2, 0, 3, 3, 1, 4, 0, 3, 0, 2]
/// labels = list(range(6))
/// p, r, f, s = precision_recall_fscore_support(truth, pred, labels=labels, zero_division=0)
/// for column in (p, r, f):
///     print([float(x) for x in column])
/// print([int(x) for x in s])
/// print(float(f1_score(truth, pred, labels=labels, average="macro", zero_division=0)))
/// print(float(f1_score(truth, pred, labels=labels, average="weighted", zero_division=0)))
/// print(float(accuracy_score(truth, pred)))
/// print(confusion_matrix(truth, pred, labels=labels).tolist())
/// ```
#[test]
fn single_label_metrics_match_sklearn() {
    let truth = [0, 0, 0, 1, 1, 1, 1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 5, 5, 0, 2];
    let pred = [0, 1, 0, 1, 1, 2, 4, 1, 1, 2, 2, 0, 3, 3, 1, 4, 0, 3, 0, 2];
    let m = single_label_metrics(&names(6), &truth, &pred);

    let col = |f: fn(&memescope::metrics::ClassMetrics) -> f64| -> Vec<f64> {
        m.per_class.iter().map(f).collect()
    };
    let two_thirds = 0.6666666666666666;
    assert_close(&col(|c| c.precision), &[0.6, two_thirds, 0.75, two_thirds, 0.0, 0.0], "P");
    assert_close(&col(|c| c.recall), &[0.75, two_thirds, 0.75, 0.5, 0.0, 0.0], "R");
    assert_close(
        &col(|c| c.f1),
        &[two_thirds, two_thirds, 0.75, 0.5714285714285714, 0.0, 0.0],
        "F1",
    );
    let support: Vec<usize> = m.per_class.iter().map(|c| c.support).collect();
    assert_eq!(support, [4, 6, 4, 4, 0, 2]);
    assert_eq!(m.per_class[3].label, "class 3");
    assert_close(
        &[m.macro_f1, m.weighted_f1, m.accuracy],
        &[0.4424603174603174, 0.5976190476190476, 0.6],
        "avg",
    );
    assert_eq!(
        m.confusion.unwrap(),
        vec![
            vec![3, 1, 0, 0, 0, 0],
            vec![0, 4, 1, 0, 1, 0],
            vec![1, 0, 3, 0, 0, 0],
            vec![0, 1, 0, 2, 1, 0],
            vec![0, 0, 0, 0, 0, 0],
            vec![1, 0, 0, 1, 0, 0],
        ]
    );
    assert_eq!(m.samples_f1, None);
}

fn rows(bits: &[[u8; 4]]) -> Vec<Vec<bool>> {
    bits.iter().map(|r| r.iter().map(|&b| b == 1).collect()).collect()
}

/// Expected values printed by:
/// ```python
/// import numpy as np
/// from sklearn.metrics import precision_recall_fscore_support, f1_score, accuracy_score
/// # 4 labels; label 3 is true 3 times but never predicted; sample 19 has no true and no
/// # predicted label (zero_division applies to its sample F1)
/// truth = np.array([
///     [1,0,0,0],[1,1,0,0],[0,1,0,0],[0,0,1,0],[1,0,1,0],
///     [0,1,1,1],[1,0,0,0],[0,0,0,1],[1,1,0,0],[0,1,0,0],
///     [0,0,1,0],[1,0,0,0],[0,1,0,1],[1,0,1,0],[0,0,1,0],
///     [1,1,1,0],[0,1,0,0],[1,0,0,0],[0,0,1,0],[0,0,0,0]])
/// pred = np.array([
///     [1,0,0,0],[1,0,0,0],[0,1,1,0],[0,0,1,0],[1,0,0,0],
///     [0,1,1,0],[0,1,0,0],[0,0,0,0],[1,1,0,0],[1,1,0,0],
///     [0,0,1,0],[1,0,0,0],[0,1,0,0],[1,0,1,0],[0,0,0,0],
///     [1,1,1,0],[0,0,0,0],[1,0,1,0],[0,0,1,0],[0,0,0,0]])
/// p, r, f, s = precision_recall_fscore_support(truth, pred, zero_division=0)
/// for column in (p, r, f):
///     print([float(x) for x in column])
/// print([int(x) for x in s])
/// for avg in ["macro", "weighted", "samples"]:
///     print(avg, float(f1_score(truth, pred, average=avg, zero_division=0)))
/// print(float(accuracy_score(truth, pred)))
/// ```
#[test]
fn multi_label_metrics_match_sklearn() {
    let truth = rows(&[
        [1, 0, 0, 0],
        [1, 1, 0, 0],
        [0, 1, 0, 0],
        [0, 0, 1, 0],
        [1, 0, 1, 0],
        [0, 1, 1, 1],
        [1, 0, 0, 0],
        [0, 0, 0, 1],
        [1, 1, 0, 0],
        [0, 1, 0, 0],
        [0, 0, 1, 0],
        [1, 0, 0, 0],
        [0, 1, 0, 1],
        [1, 0, 1, 0],
        [0, 0, 1, 0],
        [1, 1, 1, 0],
        [0, 1, 0, 0],
        [1, 0, 0, 0],
        [0, 0, 1, 0],
        [0, 0, 0, 0],
    ]);
    let pred = rows(&[
        [1, 0, 0, 0],
        [1, 0, 0, 0],
        [0, 1, 1, 0],
        [0, 0, 1, 0],
        [1, 0, 0, 0],
        [0, 1, 1, 0],
        [0, 1, 0, 0],
        [0, 0, 0, 0],
        [1, 1, 0, 0],
        [1, 1, 0, 0],
        [0, 0, 1, 0],
        [1, 0, 0, 0],
        [0, 1, 0, 0],
        [1, 0, 1, 0],
        [0, 0, 0, 0],
        [1, 1, 1, 0],
        [0, 0, 0, 0],
        [1, 0, 1, 0],
        [0, 0, 1, 0],
        [0, 0, 0, 0],
    ]);
    let m = multi_label_metrics(&names(4), &truth, &pred);

    let col = |f: fn(&memescope::metrics::ClassMetrics) -> f64| -> Vec<f64> {
        m.per_class.iter().map(f).collect()
    };
    let eight_ninths = 0.8888888888888888;
    assert_close(&col(|c| c.precision), &[eight_ninths, 0.8571428571428571, 0.75, 0.0], "P");
    assert_close(&col(|c| c.recall), &[eight_ninths, 0.75, 0.75, 0.0], "R");
    assert_close(&col(|c| c.f1), &[eight_ninths, 0.8, 0.75, 0.0], "F1");
    let support: Vec<usize> = m.per_class.iter().map(|c| c.support).collect();
    assert_eq!(support, [9, 8, 8, 3]);
    assert_close(
        &[m.macro_f1, m.weighted_f1, m.samples_f1.unwrap(), m.accuracy],
        &[0.6097222222222223, 0.7285714285714285, 0.6399999999999999, 0.45],
        "avg",
    );
    assert_eq!(m.confusion, None);
}

#[test]
fn empty_input_scores_zero_instead_of_nan() {
    let m = single_label_metrics(&names(3), &[], &[]);
    assert_eq!((m.macro_f1, m.weighted_f1, m.accuracy), (0.0, 0.0, 0.0));
    let m = multi_label_metrics(&names(3), &[], &[]);
    assert_eq!((m.macro_f1, m.samples_f1, m.accuracy), (0.0, Some(0.0), 0.0));
}

#[test]
fn best_threshold_separates_the_classes_of_each_label() {
    // Label 0: positives at 0.3 and 0.35, negatives at 0.1 and 0.2, so F1 is 1 exactly for
    // thresholds 0.25 and 0.30; 0.30 is closer to 0.5.
    // Label 1: positives at 0.9 and 0.8, negative at 0.6 and 0.1: F1 = 1 for 0.65..=0.80;
    // 0.65 is closest to 0.5.
    let probabilities = vec![vec![0.3, 0.9], vec![0.35, 0.8], vec![0.1, 0.6], vec![0.2, 0.1]];
    let truth = vec![vec![true, true], vec![true, true], vec![false, false], vec![false, false]];
    let thresholds = best_thresholds(&probabilities, &truth);
    assert_eq!(thresholds, vec![0.3, 0.65]);
    assert_eq!(apply_thresholds(&probabilities, &thresholds), truth);
}

#[test]
fn best_threshold_of_a_label_without_signal_stays_at_one_half() {
    // No positive sample: F1 is 0 at every threshold.
    let probabilities = vec![vec![0.2], vec![0.7], vec![0.9]];
    let truth = vec![vec![false], vec![false], vec![false]];
    assert_eq!(best_thresholds(&probabilities, &truth), vec![0.5]);
}

#[test]
fn a_probability_equal_to_the_threshold_counts_as_yes() {
    // Only a threshold at or below 0.45 catches the positive at exactly 0.45 while leaving
    // the negative at 0.4 out, so the choice relies on `>=`.
    let probabilities = vec![vec![0.45], vec![0.4]];
    let truth = vec![vec![true], vec![false]];
    assert_eq!(best_thresholds(&probabilities, &truth), vec![0.45]);
    assert_eq!(apply_thresholds(&probabilities, &[0.45]), truth);
}

/// RESTORE records with an empty label list (none of the categories applies) are all-zero
/// truth rows. Expected values printed by (scikit-learn 1.9.1):
/// ```python
/// import numpy as np
/// from sklearn.metrics import f1_score, precision_recall_fscore_support
/// # rows 2 and 4 have no true label; row 2 is predicted one (a false positive)
/// truth, pred = np.zeros((6, 7), int), np.zeros((6, 7), int)  # RESTORE's seven labels
/// truth[:, :3] = [[1,0,0],[0,1,0],[0,0,0],[1,0,1],[0,0,0],[0,1,1]]
/// pred[:, :3] = [[1,0,0],[0,1,1],[1,0,0],[1,0,0],[0,0,0],[0,1,1]]
/// p, r, f, s = precision_recall_fscore_support(truth, pred, zero_division=0)
/// print([float(x) for x in f[:3]])
/// for avg in ["macro", "weighted", "samples"]:
///     print(avg, float(f1_score(truth, pred, average=avg, zero_division=0)))
/// ```
#[test]
fn records_without_a_label_score_as_all_zero_rows_like_sklearn() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("test.json");
    let record = |id: usize, labels: &[&str]| {
        serde_json::json!({"sample_id": format!("T-{id}"), "ocr_text": "x",
                           "meme_depressive_categories": labels})
    };
    let [a, b, c] = ["Lack of Interest", "Feeling Down", "Eating Disorder"];
    let records = vec![
        record(0, &[a]),
        record(1, &[b]),
        record(2, &[]),
        record(3, &[a, c]),
        record(4, &[]),
        record(5, &[b, c]),
    ];
    std::fs::write(&path, serde_json::to_string(&records).unwrap()).unwrap();
    let data = Dataset::load(&path, DatasetFormat::Restore).unwrap();
    assert_eq!(data.unlabelled(), 2);

    let truth: Vec<Vec<usize>> = data.samples.iter().map(|s| s.labels.clone()).collect();
    let predicted = vec![vec![0], vec![1, 2], vec![0], vec![0], vec![], vec![1, 2]];
    let m = score(&data.space, &truth, &predicted);
    let f1: Vec<f64> = m.per_class.iter().take(3).map(|c| c.f1).collect();
    assert_close(&f1, &[0.8, 1.0, 0.5], "F1");
    // The other four labels are never true nor predicted: F1 0 under zero_division=0.
    assert_close(
        &[m.macro_f1, m.weighted_f1, m.samples_f1.unwrap()],
        &[0.32857142857142857, 0.7666666666666666, 0.5555555555555555],
        "avg",
    );
}
