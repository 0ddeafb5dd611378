//! Loading the real dataset files and splitting datasets into train and validation.

use std::path::PathBuf;

use memescope::data::{stratified_split, Dataset, DatasetFormat, Reasoning, Sample};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A real data file, or `None` (with a note) when this machine does not have it.
fn real_file(relative: &str) -> Option<PathBuf> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data").join(relative);
    if path.exists() {
        Some(path)
    } else {
        println!("skipped: {} is not on this machine", path.display());
        None
    }
}

fn count_per_label(dataset: &Dataset, indices: &[usize]) -> Vec<usize> {
    let mut counts = vec![0; dataset.space.len()];
    for &i in indices {
        for &l in &dataset.samples[i].labels {
            counts[l] += 1;
        }
    }
    counts
}

/// Asserts the split covers every sample once, and that each label with at least
/// `1 / fraction` samples keeps its share of validation samples within `tolerance`.
fn assert_stratified(dataset: &Dataset, fraction: f64, tolerance: f64, seed: u64) {
    let (train, val) = stratified_split(dataset, fraction, seed);
    let mut all: Vec<usize> = train.iter().chain(&val).copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..dataset.len()).collect::<Vec<_>>(), "disjoint and complete");

    let total = count_per_label(dataset, &(0..dataset.len()).collect::<Vec<_>>());
    let in_val = count_per_label(dataset, &val);
    for (l, (&n, &v)) in total.iter().zip(&in_val).enumerate() {
        let share = v as f64 / n.max(1) as f64;
        let label = &dataset.space.labels[l];
        assert!(
            (share - fraction).abs() <= tolerance,
            "{label}: {v} of {n} in validation ({share:.3}), wanted {fraction} ± {tolerance}"
        );
        if n as f64 >= 1.0 / fraction {
            assert!(v > 0, "{label} has {n} samples but none in validation");
        }
    }
    let wanted = dataset.len() as f64 * fraction;
    assert!((val.len() as f64 - wanted).abs() <= 0.01 * dataset.len() as f64 + 1.0);
}

fn sample(id: usize, labels: Vec<usize>) -> Sample {
    Sample {
        sample_id: format!("S-{id}"),
        ocr_text: String::new(),
        labels,
        reasoning: Reasoning::default(),
    }
}

fn dataset(format: DatasetFormat, samples: Vec<Sample>) -> Dataset {
    Dataset { source: "synthetic".into(), format, space: format.label_space(), samples }
}

/// 600 RESTORE-like samples: skewed label frequencies, mostly one label, some two or three.
fn synthetic_multi_label() -> Dataset {
    let mut rng = StdRng::seed_from_u64(99);
    let weights = [0.05, 0.3, 0.2, 0.15, 0.1, 0.15, 0.05];
    let pick = |rng: &mut StdRng| {
        let mut x: f64 = rng.random();
        weights
            .iter()
            .position(|w| {
                x -= w;
                x < 0.0
            })
            .unwrap_or(6)
    };
    let samples = (0..600)
        .map(|i| {
            let n_labels = match rng.random_range(0..10) {
                0 => 3,
                1 | 2 => 2,
                _ => 1,
            };
            let mut labels: Vec<usize> = (0..n_labels).map(|_| pick(&mut rng)).collect();
            labels.sort_unstable();
            labels.dedup();
            sample(i, labels)
        })
        .collect();
    dataset(DatasetFormat::Restore, samples)
}

/// Single-label classes of sizes 50, 30, 12, 10, 9, 1.
fn synthetic_single_label() -> Dataset {
    let sizes = [50, 30, 12, 10, 9, 1];
    let samples = sizes
        .iter()
        .enumerate()
        .flat_map(|(c, &n)| std::iter::repeat_n(c, n))
        .enumerate()
        .map(|(i, c)| sample(i, vec![c]))
        .collect();
    dataset(DatasetFormat::Axiom, samples)
}

#[test]
fn split_is_deterministic_for_a_seed_and_differs_across_seeds() {
    for data in [synthetic_single_label(), synthetic_multi_label()] {
        let first = stratified_split(&data, 0.2, 7);
        assert_eq!(first, stratified_split(&data, 0.2, 7));
        assert_ne!(first.1, stratified_split(&data, 0.2, 8).1);
    }
}

#[test]
fn single_label_split_is_stratified_and_keeps_singletons_in_training() {
    let data = synthetic_single_label();
    assert_stratified(&data, 0.1, 0.1, 3);
    let (train, val) = stratified_split(&data, 0.1, 3);
    // round(112 * 0.1) = 11 places: floor(n * 0.1) per class makes 10, and the last goes to
    // the largest remainder, the class of 9 (0.9); the singleton (0.1) gets none.
    assert_eq!(val.len(), 11);
    assert_eq!(count_per_label(&data, &val), [5, 3, 1, 1, 1, 0]);
    let lone = data.samples.iter().position(|s| s.labels == [5]).unwrap();
    assert!(train.contains(&lone), "a class's only sample stays in training");
}

#[test]
fn multi_label_split_keeps_each_labels_share() {
    // Iterative stratification keeps every label within a few samples of its share.
    assert_stratified(&synthetic_multi_label(), 0.2, 0.02, 11);
}

#[test]
#[should_panic(expected = "validation fraction")]
fn a_validation_fraction_of_one_is_refused() {
    stratified_split(&synthetic_single_label(), 1.0, 0);
}

#[test]
fn real_axiom_file_loads_and_splits_stratified() {
    let Some(path) = real_file("axiom/train.json") else { return };
    let data = Dataset::load(&path, DatasetFormat::Axiom).unwrap();
    assert_eq!(data.len(), 2460);
    assert!(!data.space.multi_label && !data.has_reasoning());
    assert_eq!(
        count_per_label(&data, &(0..data.len()).collect::<Vec<_>>()),
        [426, 378, 368, 407, 463, 418]
    );
    // Largest-remainder apportionment: each class within one sample of its exact share.
    assert_stratified(&data, 0.1, 1.0 / 368.0, 42);
}

#[test]
fn real_restore_files_load_and_split_stratified() {
    let Some(train_path) = real_file("restore/train.json") else { return };
    let train = Dataset::load(&train_path, DatasetFormat::Restore).unwrap();
    assert_eq!(train.len(), 8722);
    assert_eq!(train.samples.iter().filter(|s| s.ocr_text.is_empty()).count(), 45);
    assert_eq!(train.samples.iter().filter(|s| s.labels.len() == 3).count(), 16);
    assert!(!train.has_reasoning());
    assert_stratified(&train, 0.1, 0.005, 42);

    let Some(val_path) = real_file("restore/val.json") else { return };
    let val = Dataset::load(&val_path, DatasetFormat::Restore).unwrap();
    assert_eq!(val.len(), 359);
    assert_eq!(val.samples.iter().filter(|s| s.labels.len() == 4).count(), 3);
    // `figurative_reasoning` quotes the three other fields, so the joined reasoning is it alone.
    for s in &val.samples {
        assert_eq!(
            s.reasoning.joined(),
            s.reasoning.figurative_reasoning.as_deref().unwrap().trim()
        );
    }
}

#[test]
fn reasoning_parts_not_quoted_in_the_whole_are_appended() {
    let reasoning = Reasoning {
        figurative_reasoning: Some("1. Cause-Effect: rain. 2. Mental State: sad.".into()),
        cause_effect: Some("rain.".into()),
        figurative_understanding: Some("a cloud is grief.".into()),
        mental_state: Some(" sad. ".into()),
    };
    assert_eq!(
        reasoning.joined(),
        "1. Cause-Effect: rain. 2. Mental State: sad. a cloud is grief."
    );
}
