//! `predictions.jsonl`: one labelled sample per line, with what the model made of it.
//!
//! A run writes its best epoch's validation predictions; `memescope eval --predictions`
//! writes the same for any labelled file. Labels are named (not indexed) so the file reads
//! on its own, e.g. with `pandas.read_json(path, lines=True)`.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::atomic_file::write_atomic;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    pub sample_id: String,
    /// The sample's true labels.
    pub truth: Vec<String>,
    /// The label(s) decided: the most probable one (single-label), or every label at or
    /// above its threshold (multi-label).
    pub predicted: Vec<String>,
    /// Every label's probability.
    pub probabilities: BTreeMap<String, f32>,
}

impl Prediction {
    /// The prediction for one sample from label indices and one probability per label.
    pub fn new(
        labels: &[String],
        sample_id: &str,
        truth: &[usize],
        predicted: &[usize],
        probabilities: &[f32],
    ) -> Self {
        let names = |indices: &[usize]| indices.iter().map(|&i| labels[i].clone()).collect();
        Self {
            sample_id: sample_id.to_string(),
            truth: names(truth),
            predicted: names(predicted),
            probabilities: labels.iter().cloned().zip(probabilities.iter().copied()).collect(),
        }
    }
}

/// Replaces `path` with `predictions`, one JSON object per line; a reader never sees a
/// half-written file.
pub fn write_predictions(path: &Path, predictions: &[Prediction]) -> Result<()> {
    let mut text = String::new();
    for prediction in predictions {
        text.push_str(&serde_json::to_string(prediction)?);
        text.push('\n');
    }
    write_atomic(path, text.as_bytes())
}

/// Every prediction of `path`, in order. A line that does not parse is an error naming it.
pub fn read_predictions(path: &Path) -> Result<Vec<Prediction>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut predictions = Vec::new();
    for (number, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        match serde_json::from_str(line) {
            Ok(prediction) => predictions.push(prediction),
            Err(error) => bail!("{}: line {}: {error}", path.display(), number + 1),
        }
    }
    Ok(predictions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predictions_round_trip_with_named_labels() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("predictions.jsonl");
        let labels = vec!["calm".to_string(), "sad".to_string()];
        let written = vec![
            Prediction::new(&labels, "a", &[1], &[0], &[0.75, 0.25]),
            Prediction::new(&labels, "b", &[0, 1], &[1], &[0.1, 0.9]),
        ];
        write_predictions(&path, &written).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(text.starts_with(r#"{"sample_id":"a","truth":["sad"],"predicted":["calm"],"#));
        assert_eq!(read_predictions(&path).unwrap(), written);

        std::fs::write(&path, format!("{}\nnot json\n", text.lines().next().unwrap())).unwrap();
        let error = format!("{:#}", read_predictions(&path).unwrap_err());
        assert!(error.contains("predictions.jsonl: line 2"), "{error}");
    }
}
