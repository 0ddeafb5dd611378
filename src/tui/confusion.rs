//! What the Confusion pane shows, computed from an epoch's metrics and its misclassified
//! samples, and the cells that filter the Errors pane to exactly their samples. No drawing.

use crate::events::Misclassified;
use crate::metrics::Metrics;

/// A kind of mistake; the Errors pane shows the samples that make it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCell {
    /// `truth` was missed and `predicted` given instead (single-label: exactly that cell).
    Confused { truth: usize, predicted: usize },
    /// Both labels were true and both were missed (multi-label).
    MissedTogether(usize, usize),
}

impl ErrorCell {
    pub fn matches(&self, sample: &Misclassified) -> bool {
        let missed = |c: usize| sample.truth.contains(&c) && !sample.predicted.contains(&c);
        let extra = |c: usize| sample.predicted.contains(&c) && !sample.truth.contains(&c);
        match *self {
            ErrorCell::Confused { truth, predicted } => missed(truth) && extra(predicted),
            ErrorCell::MissedTogether(a, b) => missed(a) && missed(b),
        }
    }

    pub fn describe(&self, labels: &[String]) -> String {
        let name = |c: usize| labels.get(c).cloned().unwrap_or(format!("#{c}"));
        match *self {
            ErrorCell::Confused { truth, predicted } => {
                format!("{} → {}", name(truth), name(predicted))
            }
            ErrorCell::MissedTogether(a, b) => format!("{} + {} missed", name(a), name(b)),
        }
    }
}

/// Row-normalised rates of a confusion matrix (`confusion[true][predicted]`): the share of
/// each true class that went to each prediction; rows without samples stay zero.
pub fn row_rates(confusion: &[Vec<usize>]) -> Vec<Vec<f64>> {
    confusion
        .iter()
        .map(|row| {
            let total: usize = row.iter().sum();
            row.iter().map(|&n| if total == 0 { 0.0 } else { n as f64 / total as f64 }).collect()
        })
        .collect()
}

/// True positives, false positives and false negatives of one label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LabelCounts {
    pub tp: usize,
    pub fp: usize,
    pub fn_: usize,
}

/// Per-label counts. TP and FN follow from recall and support; FP from precision when
/// there is a true positive, else from the listed mistakes (every sample with a false
/// positive is a mistake, so the count is exact unless the list was cut short).
pub fn label_counts(metrics: &Metrics, items: &[Misclassified]) -> Vec<LabelCounts> {
    metrics
        .per_class
        .iter()
        .enumerate()
        .map(|(c, class)| {
            let tp = (class.recall * class.support as f64).round() as usize;
            let fp = if tp > 0 && class.precision > 0.0 {
                (tp as f64 / class.precision - tp as f64).round() as usize
            } else {
                items.iter().filter(|m| m.predicted.contains(&c) && !m.truth.contains(&c)).count()
            };
            LabelCounts { tp, fp, fn_: class.support.saturating_sub(tp) }
        })
        .collect()
}

/// The most frequent mistakes among the listed samples, most frequent first (ties in
/// label order): each true label missed with each label predicted instead, and each pair
/// of true labels missed together.
pub fn frequent_mistakes(items: &[Misclassified], limit: usize) -> Vec<(ErrorCell, usize)> {
    let mut counts: Vec<(ErrorCell, usize)> = Vec::new();
    let mut add = |cell: ErrorCell| match counts.iter_mut().find(|(c, _)| *c == cell) {
        Some((_, n)) => *n += 1,
        None => counts.push((cell, 1)),
    };
    for sample in items {
        let missed: Vec<usize> =
            sample.truth.iter().copied().filter(|c| !sample.predicted.contains(c)).collect();
        let extra: Vec<usize> =
            sample.predicted.iter().copied().filter(|c| !sample.truth.contains(c)).collect();
        for &truth in &missed {
            for &predicted in &extra {
                add(ErrorCell::Confused { truth, predicted });
            }
        }
        for (i, &a) in missed.iter().enumerate() {
            for &b in &missed[i + 1..] {
                add(ErrorCell::MissedTogether(a.min(b), a.max(b)));
            }
        }
    }
    let key = |cell: &ErrorCell| match *cell {
        ErrorCell::Confused { truth, predicted } => (0, truth, predicted),
        ErrorCell::MissedTogether(a, b) => (1, a, b),
    };
    counts.sort_by(|a, b| b.1.cmp(&a.1).then(key(&a.0).cmp(&key(&b.0))));
    counts.truncate(limit);
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::ClassMetrics;

    fn sample(truth: &[usize], predicted: &[usize]) -> Misclassified {
        Misclassified {
            sample_id: "s".into(),
            text: String::new(),
            reasoning: None,
            image: None,
            truth: truth.to_vec(),
            predicted: predicted.to_vec(),
            probabilities: vec![0.5; 4],
        }
    }

    #[test]
    fn rates_are_shares_of_each_true_class() {
        let rates = row_rates(&[vec![3, 1], vec![0, 0]]);
        assert_eq!(rates, vec![vec![0.75, 0.25], vec![0.0, 0.0]]);
    }

    #[test]
    fn mistakes_are_counted_by_pair_and_cells_match_exactly_their_samples() {
        let items = [sample(&[0, 1], &[2]), sample(&[0], &[2]), sample(&[0, 1], &[1, 3])];
        let top = frequent_mistakes(&items, 10);
        assert_eq!(top[0], (ErrorCell::Confused { truth: 0, predicted: 2 }, 2));
        assert!(top.contains(&(ErrorCell::MissedTogether(0, 1), 1)));
        assert!(top.contains(&(ErrorCell::Confused { truth: 0, predicted: 3 }, 1)));
        let cell = ErrorCell::Confused { truth: 1, predicted: 2 };
        let matched: Vec<bool> = items.iter().map(|m| cell.matches(m)).collect();
        assert_eq!(matched, [true, false, false], "label 1 predicted in the third is not missed");
    }

    #[test]
    fn label_counts_follow_from_precision_recall_and_support() {
        let class = |precision, recall, support| ClassMetrics {
            label: "l".into(),
            precision,
            recall,
            f1: 0.0,
            support,
        };
        let metrics = Metrics {
            macro_f1: 0.0,
            weighted_f1: 0.0,
            per_class: vec![class(0.8, 0.4, 10), class(0.0, 0.0, 5)],
            confusion: None,
            samples_f1: None,
            accuracy: 0.0,
        };
        let items = [sample(&[0], &[1]), sample(&[2], &[1])];
        let counts = label_counts(&metrics, &items);
        assert_eq!(counts[0], LabelCounts { tp: 4, fp: 1, fn_: 6 });
        assert_eq!(counts[1], LabelCounts { tp: 0, fp: 2, fn_: 5 });
    }
}
