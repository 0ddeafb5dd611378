//! Seeded, stratified k-fold partitions for cross-validation (`memescope cv`).
//!
//! Single-label data is dealt class by class, round-robin, with the starting fold carried
//! from one class to the next, so that every fold gets `floor` or `ceil` of each class's
//! `n_c / k` and the fold sizes differ by at most one.
//!
//! Multi-label data uses iterative stratification (Sechidis et al., 2011) with `k` equal
//! folds, as [`super::stratified_split`] does with two unequal ones: the rarest label is
//! dealt first, each of its samples going to the fold that most lacks that label.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::split::iterative_stratification;
use super::Dataset;

/// The validation indices of each of `k` folds (each sorted ascending); together they cover
/// every sample exactly once. Reproducible for a given seed.
///
/// # Panics
/// If `k < 2` or `k` exceeds the number of samples.
pub fn stratified_folds(dataset: &Dataset, k: usize, seed: u64) -> Vec<Vec<usize>> {
    assert!(
        k >= 2 && k <= dataset.len(),
        "k-fold needs 2 <= k <= samples ({}), got k = {k}",
        dataset.len()
    );
    let mut rng = StdRng::seed_from_u64(seed);
    let label_sets: Vec<&[usize]> = dataset.samples.iter().map(|s| s.labels.as_slice()).collect();
    let fold_of = if dataset.space.multi_label {
        let fractions = vec![1.0 / k as f64; k];
        iterative_stratification(&label_sets, dataset.space.len(), &fractions, &mut rng)
    } else {
        round_robin_folds(&label_sets, dataset.space.len(), k, &mut rng)
    };
    let mut folds = vec![Vec::new(); k];
    for (i, f) in fold_of.into_iter().enumerate() {
        folds[f].push(i);
    }
    folds
}

/// The training indices of fold `fold`: every sample not in its validation part.
pub fn fold_train_indices(folds: &[Vec<usize>], fold: usize) -> Vec<usize> {
    let mut train: Vec<usize> = folds
        .iter()
        .enumerate()
        .filter(|(f, _)| *f != fold)
        .flat_map(|(_, indices)| indices.iter().copied())
        .collect();
    train.sort_unstable();
    train
}

fn round_robin_folds(
    label_sets: &[&[usize]],
    n_classes: usize,
    k: usize,
    rng: &mut StdRng,
) -> Vec<usize> {
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); n_classes];
    for (i, labels) in label_sets.iter().enumerate() {
        members[labels[0]].push(i);
    }
    let mut fold_of = vec![0; label_sets.len()];
    // Carrying the position across classes keeps the folds' sizes within one of each other.
    let mut next = 0;
    for indices in &mut members {
        indices.shuffle(rng);
        for &i in indices.iter() {
            fold_of[i] = next % k;
            next += 1;
        }
    }
    fold_of
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{DatasetFormat, Sample};

    fn dataset(labels: Vec<Vec<usize>>, multi_label: bool) -> Dataset {
        let format = if multi_label { DatasetFormat::Restore } else { DatasetFormat::Axiom };
        Dataset {
            source: "mem.json".into(),
            format,
            space: format.label_space(),
            samples: labels
                .into_iter()
                .enumerate()
                .map(|(i, labels)| Sample {
                    sample_id: format!("s{i}"),
                    ocr_text: format!("text {i}"),
                    labels,
                    reasoning: Default::default(),
                })
                .collect(),
        }
    }

    fn assert_partition(folds: &[Vec<usize>], n: usize) {
        let mut all: Vec<usize> = folds.concat();
        all.sort_unstable();
        assert_eq!(all, (0..n).collect::<Vec<_>>(), "every sample in exactly one fold");
    }

    #[test]
    fn single_label_folds_keep_each_class_share_and_balanced_sizes() {
        // 40 of class 0, 13 of class 1, 7 of class 2.
        let labels: Vec<Vec<usize>> = (0..60)
            .map(|i| {
                vec![if i < 40 {
                    0
                } else if i < 53 {
                    1
                } else {
                    2
                }]
            })
            .collect();
        let data = dataset(labels, false);
        let folds = stratified_folds(&data, 5, 3);
        assert_partition(&folds, 60);
        for fold in &folds {
            assert_eq!(fold.len(), 12);
            let count = |c: usize| fold.iter().filter(|&&i| data.samples[i].labels[0] == c).count();
            assert_eq!(count(0), 8, "40 / 5 of class 0 in every fold");
            assert!((2..=3).contains(&count(1)), "13 / 5 of class 1: {}", count(1));
            assert!((1..=2).contains(&count(2)), "7 / 5 of class 2: {}", count(2));
        }
        assert_eq!(folds, stratified_folds(&data, 5, 3), "seeded");
        assert_ne!(folds, stratified_folds(&data, 5, 4), "the seed matters");
        let train = fold_train_indices(&folds, 2);
        assert_eq!(train.len(), 48);
        assert!(train.iter().all(|i| !folds[2].contains(i)));
    }

    #[test]
    fn multi_label_folds_spread_every_label() {
        // Label 6 (rare) on 10 samples, label 0 on every third, label 1 on the rest.
        let labels: Vec<Vec<usize>> = (0..90)
            .map(|i| {
                let mut set = vec![if i % 3 == 0 { 0 } else { 1 }];
                if i % 9 == 0 {
                    set.push(6);
                }
                set
            })
            .collect();
        let data = dataset(labels, true);
        let folds = stratified_folds(&data, 5, 11);
        assert_partition(&folds, 90);
        for fold in &folds {
            assert!((17..=19).contains(&fold.len()), "fold size {}", fold.len());
            let with =
                |l: usize| fold.iter().filter(|&&i| data.samples[i].labels.contains(&l)).count();
            assert_eq!(with(6), 2, "10 samples of the rare label, 2 per fold");
            assert!((5..=7).contains(&with(0)), "30 / 5 of label 0: {}", with(0));
        }
    }

    #[test]
    #[should_panic(expected = "k-fold needs")]
    fn one_fold_is_rejected() {
        stratified_folds(&dataset(vec![vec![0], vec![1]], false), 1, 0);
    }
}
