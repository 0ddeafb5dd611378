//! The one way an ensemble combines its members: each label's probability averaged over the
//! members, sample by sample (f64 sums, members in order). The members' probabilities come
//! either from models scored now (`run_ensemble`) or from the prediction files their runs
//! wrote (`cv_ensemble`, and the validation predictions a run ensemble picks thresholds on).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::evaluate::{decide, score, validation_thresholds};
use crate::data::LabelSpace;
use crate::runs::{read_json, read_predictions, Prediction, Report, RunDir};

/// Per sample and label, the mean of the members' probabilities. Every member scores the
/// same samples in the same order, with the labels in the same order.
pub fn mean_probabilities(members: &[Vec<Vec<f32>>]) -> Vec<Vec<f32>> {
    let Some(first) = members.first() else { return Vec::new() };
    let mut sums: Vec<Vec<f64>> = first.iter().map(|row| vec![0.0; row.len()]).collect();
    for member in members {
        for (sum, row) in sums.iter_mut().zip(member) {
            for (s, &p) in sum.iter_mut().zip(row) {
                *s += f64::from(p);
            }
        }
    }
    let n = members.len() as f64;
    sums.into_iter().map(|row| row.into_iter().map(|s| (s / n) as f32).collect()).collect()
}

/// Scores the members' averaged predictions in the file `scored` names in each of `runs`
/// (one run per member): their sample count, macro-F1 and weighted-F1. Multi-label data are
/// decided with thresholds chosen, as a run chooses its own, on the members' averaged
/// validation predictions (`predictions.jsonl`, the best epoch's). A missing file is an
/// error followed by `why_missing`.
pub fn score_members(
    runs: &[RunDir],
    scored: fn(&RunDir) -> PathBuf,
    why_missing: &str,
) -> Result<(usize, f64, f64)> {
    let space = read_json::<Report>(&runs[0].report())?.label_space();
    let (probabilities, truth) = average_files(runs, scored, &space, why_missing)?;
    let thresholds = match space.multi_label {
        true => Some(shared_thresholds(runs, &space, why_missing)?),
        false => None,
    };
    let predicted = decide(&probabilities, space.multi_label, thresholds.as_deref());
    let metrics = score(&space, &truth, &predicted);
    Ok((truth.len(), metrics.macro_f1, metrics.weighted_f1))
}

/// Multi-label: the thresholds the members' averaged validation predictions call for (each
/// run's `predictions.jsonl`), chosen as a run chooses its own.
pub fn shared_thresholds(
    runs: &[RunDir],
    space: &LabelSpace,
    why_missing: &str,
) -> Result<Vec<f32>> {
    let (probabilities, truth) = average_files(runs, RunDir::predictions, space, why_missing)?;
    Ok(validation_thresholds(&probabilities, &truth, space.len()))
}

/// The members' averaged predictions from the file `which` names in each of `runs`.
fn average_files(
    runs: &[RunDir],
    which: fn(&RunDir) -> PathBuf,
    space: &LabelSpace,
    why_missing: &str,
) -> Result<ProbabilitiesAndTruth> {
    let paths: Vec<PathBuf> = runs.iter().map(which).collect();
    average_predictions(&read_member_predictions(&paths, why_missing)?, space)
}

/// The prediction files at `paths`, one per member, checked to hold the same samples in the
/// same order. A missing file is an error that says so, followed by `why_missing`.
fn read_member_predictions(paths: &[PathBuf], why_missing: &str) -> Result<Vec<Vec<Prediction>>> {
    let members = paths
        .iter()
        .map(|path| {
            if !path.is_file() {
                bail!("{} is missing: {why_missing}", path.display());
            }
            read_predictions(path)
        })
        .collect::<Result<Vec<_>>>()?;
    for (path, predictions) in paths.iter().zip(&members).skip(1) {
        same_samples(&members[0], predictions).with_context(|| samples_differ(path, &paths[0]))?;
    }
    Ok(members)
}

fn samples_differ(path: &Path, first: &Path) -> String {
    format!(
        "{} holds other samples than {}: an ensemble's members must share their samples (for \
         cross-validations: the same data, --folds and --seed)",
        path.display(),
        first.display()
    )
}

/// Whether two members' predictions are for the same samples in the same order.
fn same_samples(a: &[Prediction], b: &[Prediction]) -> Result<()> {
    if a.len() != b.len() {
        bail!("{} samples against {}", b.len(), a.len());
    }
    if let Some((x, y)) = a.iter().zip(b).find(|(x, y)| x.sample_id != y.sample_id) {
        bail!("sample {} where the first member has {}", y.sample_id, x.sample_id);
    }
    Ok(())
}

/// Per sample, each label's probability (in a label space's order), and the true labels'
/// indices.
type ProbabilitiesAndTruth = (Vec<Vec<f32>>, Vec<Vec<usize>>);

/// Per sample: the members' mean probability of each label (in `space`'s order), and the
/// true labels' indices.
fn average_predictions(
    members: &[Vec<Prediction>],
    space: &LabelSpace,
) -> Result<ProbabilitiesAndTruth> {
    let index = |label: &str, sample_id: &str| -> Result<usize> {
        space.labels.iter().position(|l| l == label).with_context(|| {
            format!("sample {sample_id}: label `{label}` is not one of the run's labels")
        })
    };
    let in_label_order = |predictions: &Vec<Prediction>| -> Result<Vec<Vec<f32>>> {
        predictions
            .iter()
            .map(|prediction| {
                if prediction.probabilities.len() != space.len() {
                    bail!(
                        "sample {}: {} probabilities for {} labels",
                        prediction.sample_id,
                        prediction.probabilities.len(),
                        space.len()
                    );
                }
                let mut row = vec![0f32; space.len()];
                for (label, &p) in &prediction.probabilities {
                    row[index(label, &prediction.sample_id)?] = p;
                }
                Ok(row)
            })
            .collect()
    };
    let probabilities = members.iter().map(in_label_order).collect::<Result<Vec<_>>>()?;
    let truth = members[0]
        .iter()
        .map(|p| p.truth.iter().map(|label| index(label, &p.sample_id)).collect())
        .collect::<Result<Vec<Vec<usize>>>>()?;
    Ok((mean_probabilities(&probabilities), truth))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mean_is_per_sample_and_label_over_the_members() {
        let a = vec![vec![0.25, 0.75], vec![1.0, 0.0]];
        let b = vec![vec![0.5, 0.5], vec![0.0, 1.0]];
        assert_eq!(mean_probabilities(&[a.clone(), b]), vec![vec![0.375, 0.625], vec![0.5, 0.5]]);
        // One member is its own mean, to the bit.
        assert_eq!(mean_probabilities(std::slice::from_ref(&a)), a);
    }

    #[test]
    fn predictions_are_averaged_by_label_name_whatever_their_order() {
        let space = LabelSpace {
            name: "t".into(),
            labels: vec!["calm".into(), "sad".into()],
            multi_label: false,
        };
        let prediction = |calm: f32, sad: f32| Prediction {
            sample_id: "m1".into(),
            truth: vec!["sad".into()],
            predicted: vec![],
            // A BTreeMap: stored in name order, which need not be the label order.
            probabilities: [("sad".to_string(), sad), ("calm".to_string(), calm)].into(),
        };
        let (mean, truth) = average_predictions(
            &[vec![prediction(0.25, 0.75)], vec![prediction(0.75, 0.25)]],
            &space,
        )
        .unwrap();
        assert_eq!(mean, vec![vec![0.5, 0.5]]);
        assert_eq!(truth, vec![vec![1]]);
        let wrong = Prediction {
            probabilities: [("angry".to_string(), 1.0)].into(),
            ..prediction(0.0, 0.0)
        };
        let error = average_predictions(&[vec![wrong]], &space).unwrap_err().to_string();
        assert!(error.contains("1 probabilities for 2 labels"), "{error}");
    }

    #[test]
    fn members_scored_on_other_samples_are_refused_with_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, ids: &[&str]| {
            let path = dir.path().join(name);
            let predictions: Vec<Prediction> = ids
                .iter()
                .map(|id| Prediction::new(&["a".into()], id, &[0], &[0], &[1.0]))
                .collect();
            crate::runs::write_predictions(&path, &predictions).unwrap();
            path
        };
        let (a, b) = (write("a.jsonl", &["m1", "m2"]), write("b.jsonl", &["m1", "m3"]));
        let error = format!("{:#}", read_member_predictions(&[a.clone(), b], "").unwrap_err());
        assert!(
            error.contains("b.jsonl holds other samples than") && error.contains("sample m3"),
            "{error}"
        );
        assert_eq!(read_member_predictions(&[a.clone(), a], "").unwrap().len(), 2);
        let missing = dir.path().join("none.jsonl");
        let error = read_member_predictions(&[missing], "why").unwrap_err().to_string();
        assert!(error.ends_with("none.jsonl is missing: why"), "{error}");
    }
}
