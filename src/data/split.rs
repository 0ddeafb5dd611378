//! Seeded, stratified train/validation splits.
//!
//! Single-label data (AxiOM) is split class by class: each class sends its share of the
//! validation set, with the rounding remainders handed out so that the validation set has
//! exactly `round(n * val_fraction)` samples.
//!
//! Multi-label data (RESTORE) uses iterative stratification (Sechidis, Tsoumakas & Vlahavas,
//! "On the stratification of multi-label data", ECML PKDD 2011). Stratifying by label *set*
//! would need a fallback for the many rare sets (RESTORE train has 16 memes with three labels
//! spread over several different sets), and it optimises the wrong target: the metrics are
//! label-wise, so what matters is that each label keeps its proportion in both parts, which is
//! exactly what iterative stratification aims for. It deals the rarest label first, so rare
//! labels are not starved by decisions made for common ones.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use super::Dataset;

/// Splits `dataset` into (train, validation) sample indices, stratified by label
/// (label-wise, by iterative stratification, for multi-label data), reproducible for a given
/// seed. Both index lists are sorted ascending; together they cover every sample once.
///
/// A class with a single sample stays in training: a model cannot learn a class it never
/// sees, while validation can do without it. Every class with at least `1 / val_fraction`
/// samples gets at least one validation sample.
///
/// # Panics
/// If `val_fraction` is not strictly between 0 and 1.
pub fn stratified_split(
    dataset: &Dataset,
    val_fraction: f64,
    seed: u64,
) -> (Vec<usize>, Vec<usize>) {
    assert!(
        val_fraction > 0.0 && val_fraction < 1.0,
        "validation fraction must be between 0 and 1 (exclusive), got {val_fraction}"
    );
    let mut rng = StdRng::seed_from_u64(seed);
    let label_sets: Vec<&[usize]> = dataset.samples.iter().map(|s| s.labels.as_slice()).collect();
    let in_val = if dataset.space.multi_label {
        iterative_split(&label_sets, dataset.space.len(), val_fraction, &mut rng)
    } else {
        let classes: Vec<usize> = label_sets.iter().map(|labels| labels[0]).collect();
        per_class_split(&classes, dataset.space.len(), val_fraction, &mut rng)
    };
    let (val, train): (Vec<usize>, Vec<usize>) = (0..in_val.len()).partition(|&i| in_val[i]);
    (train, val)
}

/// Single-label: the validation flag of each sample, sending `val_fraction` of each class.
fn per_class_split(
    classes: &[usize],
    n_classes: usize,
    val_fraction: f64,
    rng: &mut StdRng,
) -> Vec<bool> {
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); n_classes];
    for (i, &c) in classes.iter().enumerate() {
        members[c].push(i);
    }
    // Largest-remainder apportionment of round(n * fraction) validation places: every class
    // gets floor(n_c * fraction), and the places left go to the largest remainders.
    let target = (classes.len() as f64 * val_fraction).round() as usize;
    let ideal: Vec<f64> = members.iter().map(|m| m.len() as f64 * val_fraction).collect();
    let mut quota: Vec<usize> = ideal.iter().map(|x| x.floor() as usize).collect();
    let mut by_remainder: Vec<usize> = (0..n_classes).collect();
    by_remainder.shuffle(rng); // random order among equal remainders
    by_remainder
        .sort_by(|&a, &b| (ideal[b] - ideal[b].floor()).total_cmp(&(ideal[a] - ideal[a].floor())));
    let mut left = target.saturating_sub(quota.iter().sum());
    for c in by_remainder {
        if left == 0 {
            break;
        }
        if quota[c] + 1 < members[c].len() {
            quota[c] += 1;
            left -= 1;
        }
    }
    let mut in_val = vec![false; classes.len()];
    // floor(n_c * fraction) < n_c, and a remainder place is only given below n_c - 1, so a
    // class never sends its last sample away from training.
    for (indices, &take) in members.iter_mut().zip(&quota) {
        indices.shuffle(rng);
        for &i in &indices[..take] {
            in_val[i] = true;
        }
    }
    in_val
}

fn iterative_split(
    label_sets: &[&[usize]],
    n_labels: usize,
    val_fraction: f64,
    rng: &mut StdRng,
) -> Vec<bool> {
    iterative_stratification(label_sets, n_labels, &[1.0 - val_fraction, val_fraction], rng)
        .into_iter()
        .map(|fold| fold == 1)
        .collect()
}

/// Iterative stratification (Sechidis et al., 2011): assigns each sample to one of
/// `fractions.len()` folds so that every label is shared out in those fractions. The label
/// with the fewest unassigned samples is dealt first, each of its samples going to the fold
/// that most lacks that label. Used for the validation split and for k-fold CV alike.
pub(super) fn iterative_stratification(
    label_sets: &[&[usize]],
    n_labels: usize,
    fractions: &[f64],
    rng: &mut StdRng,
) -> Vec<usize> {
    let n = label_sets.len();
    let k = fractions.len();

    // Samples of each label, in a seeded random order.
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); n_labels];
    for (i, labels) in label_sets.iter().enumerate() {
        for &l in *labels {
            members[l].push(i);
        }
    }
    for m in &mut members {
        m.shuffle(rng);
    }

    // How many more samples (overall, and of each label) each fold still wants.
    let mut wanted_total: Vec<f64> = fractions.iter().map(|f| f * n as f64).collect();
    let mut wanted: Vec<Vec<f64>> =
        fractions.iter().map(|f| members.iter().map(|m| f * m.len() as f64).collect()).collect();

    let mut fold: Vec<Option<usize>> = vec![None; n];
    let mut remaining: Vec<usize> = members.iter().map(Vec::len).collect();
    while let Some(label) =
        (0..n_labels).filter(|&l| remaining[l] > 0).min_by_key(|&l| remaining[l])
    {
        for &i in &members[label] {
            if fold[i].is_some() {
                continue;
            }
            let chosen = pick_fold(&wanted, &wanted_total, label, rng);
            fold[i] = Some(chosen);
            wanted_total[chosen] -= 1.0;
            for &l in label_sets[i] {
                wanted[chosen][l] -= 1.0;
                remaining[l] -= 1;
            }
        }
    }
    // Samples without any label (multi-label records where no category applies) only
    // balance the fold sizes: each goes to the first fold that wants most.
    fold.into_iter()
        .map(|f| {
            f.unwrap_or_else(|| {
                let chosen = (0..k)
                    .min_by(|&a, &b| wanted_total[b].total_cmp(&wanted_total[a]))
                    .expect("at least one fold");
                wanted_total[chosen] -= 1.0;
                chosen
            })
        })
        .collect()
}

/// The fold that most wants another sample of `label`; ties go to the fold that wants the
/// most samples overall, then to a random one of the tied folds.
fn pick_fold(wanted: &[Vec<f64>], wanted_total: &[f64], label: usize, rng: &mut StdRng) -> usize {
    let key = |f: usize| (wanted[f][label], wanted_total[f]);
    let best = (1..wanted.len()).map(key).fold(key(0), |a, b| {
        if b.partial_cmp(&a) == Some(std::cmp::Ordering::Greater) {
            b
        } else {
            a
        }
    });
    let tied: Vec<usize> = (0..wanted.len()).filter(|&f| key(f) == best).collect();
    if tied.len() == 1 {
        tied[0]
    } else {
        tied[rng.random_range(0..tied.len())]
    }
}
