//! Labelling new memes with a trained run, or an ensemble of runs: read each image's text
//! by OCR, featurise the images and texts the way each run was trained, and score them with
//! its best model (an ensemble averages its runs' probabilities).
//!
//! A file that is not a decodable image, or whose OCR fails, is skipped with its reason;
//! the others are still labelled.

mod inputs;

pub use inputs::expand_inputs;

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::data::{check_image, ImageReport, ImageStatus, Reasoning, Sample};
use crate::events::TrainEvent;
use crate::features::{featurize_samples, FeatureInput};
use crate::ocr::{OcrCache, OcrEngine};
use crate::train::{ocr_cache_dir, RunEnsemble};

/// The run's verdict on one image.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prediction {
    pub path: PathBuf,
    /// The text OCR read; `None` when the run's model reads no text (so no OCR was done).
    pub text: Option<String>,
    /// The decided labels: the most probable one (single-label), or every label at or
    /// above its threshold (multi-label; possibly none).
    pub labels: Vec<String>,
    /// Every label's probability, in the label space's order.
    #[serde(serialize_with = "as_map")]
    pub probabilities: Vec<(String, f32)>,
}

/// An input that was not labelled, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub path: PathBuf,
    pub reason: String,
}

impl Skipped {
    pub fn new(path: &Path, reason: impl Into<String>) -> Self {
        Self { path: path.to_path_buf(), reason: reason.into() }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct PredictOutcome {
    pub predictions: Vec<Prediction>,
    pub skipped: Vec<Skipped>,
}

/// Labels the images at `paths` with `run` (one run or several). `ocr` reads their text; it
/// may be `None` only when no run's model reads text. OCR results are cached under the
/// first run's cache folder.
pub fn predict_images(
    run: &RunEnsemble,
    paths: &[PathBuf],
    ocr: Option<&dyn OcrEngine>,
    emit: &mut dyn FnMut(TrainEvent),
) -> Result<PredictOutcome> {
    let mut outcome = PredictOutcome::default();
    let mut images: Vec<PathBuf> = Vec::with_capacity(paths.len());
    for path in paths {
        match check_image(path) {
            ImageStatus::Found(path) => images.push(path),
            ImageStatus::Undecodable { reason, .. } => {
                outcome.skipped.push(Skipped::new(path, format!("not a readable image: {reason}")))
            }
            ImageStatus::Missing => outcome.skipped.push(Skipped::new(path, "no such file")),
        }
    }
    let texts = if run.reads_text() {
        let Some(engine) = ocr else {
            bail!("the run's model reads the memes' text, but no OCR engine was given");
        };
        let (kept, texts, failed) = read_texts(run, engine, images)?;
        images = kept;
        outcome.skipped.extend(failed);
        Some(texts)
    } else {
        None
    };
    if images.is_empty() {
        return Ok(outcome);
    }

    let samples: Vec<Sample> = images
        .iter()
        .enumerate()
        .map(|(i, path)| unlabelled(path, texts.as_ref().map_or("", |t| t[i].as_str())))
        .collect();
    let report = ImageReport { statuses: images.iter().cloned().map(ImageStatus::Found).collect() };
    let probabilities = run.probabilities(|member| {
        // Only a model that reads images gets image features: a run trained text-only may
        // still name a vision encoder in its config.
        let input = FeatureInput {
            name: format!("{} images to predict", images.len()),
            samples: &samples,
            images: member.reads_images().then_some(&report),
        };
        Ok(featurize_samples(&member.config, &input, &member.device, emit)?.0)
    })?;
    let decided = run.decide(&probabilities);
    let labels = &run.space.labels;
    for (i, path) in images.into_iter().enumerate() {
        outcome.predictions.push(Prediction {
            path,
            text: texts.as_ref().map(|t| t[i].clone()),
            labels: decided[i].iter().map(|&c| labels[c].clone()).collect(),
            probabilities: labels.iter().cloned().zip(probabilities[i].iter().copied()).collect(),
        });
    }
    Ok(outcome)
}

/// The OCR text of each image, through the cache; images whose OCR fails are skipped.
fn read_texts(
    run: &RunEnsemble,
    engine: &dyn OcrEngine,
    images: Vec<PathBuf>,
) -> Result<(Vec<PathBuf>, Vec<String>, Vec<Skipped>)> {
    let mut cache = OcrCache::open(&ocr_cache_dir(&run.members[0].config), engine.name())?;
    let (mut kept, mut texts, mut failed) = (Vec::new(), Vec::new(), Vec::new());
    for path in images {
        match cache.recognize(engine, &path) {
            Ok(recognized) => {
                kept.push(path);
                texts.push(recognized.text);
            }
            Err(e) => failed.push(Skipped::new(&path, format!("OCR failed: {e:#}"))),
        }
    }
    cache.save()?;
    Ok((kept, texts, failed))
}

/// A sample for an image nobody has labelled: its id is the file name without extension.
fn unlabelled(path: &Path, text: &str) -> Sample {
    let id = path.file_stem().map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    Sample {
        sample_id: id,
        ocr_text: text.to_string(),
        labels: Vec::new(),
        reasoning: Reasoning::default(),
    }
}

/// Probabilities as a JSON object `{label: probability}` in label order (scripts look
/// labels up by name; people reading the output see the dataset's order).
fn as_map<S: Serializer>(pairs: &[(String, f32)], serializer: S) -> Result<S::Ok, S::Error> {
    let mut map = serializer.serialize_map(Some(pairs.len()))?;
    for (label, probability) in pairs {
        map.serialize_entry(label, probability)?;
    }
    map.end()
}
