//! Putting OCR text into a dataset's samples.

use std::path::PathBuf;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use super::{OcrCache, OcrEngine};
use crate::data::{ImageReport, ImageStatus, Sample};

/// When training samples get their text from OCR (`data.ocr`, `--ocr`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum OcrPolicy {
    /// Keep the dataset's text as it is; a record without `ocr_text` is an error.
    Never,
    /// OCR only the records that have no `ocr_text` field. An empty or `null` text is kept:
    /// it is how the datasets mark a meme without text.
    #[default]
    Missing,
    /// Replace every sample's text with OCR of its image.
    Always,
}

impl OcrPolicy {
    /// The samples (of `samples`) to OCR, given the ones whose record has no text.
    pub fn select(self, samples: usize, without_text: &[usize]) -> Vec<usize> {
        match self {
            OcrPolicy::Never => Vec::new(),
            OcrPolicy::Missing => without_text.to_vec(),
            OcrPolicy::Always => (0..samples).collect(),
        }
    }
}

/// What [`fill_ocr_text`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OcrFillReport {
    /// Samples whose images were read by the engine now.
    pub recognized: usize,
    /// Samples whose text came from the cache.
    pub from_cache: usize,
    /// Samples that needed OCR but have no readable image (missing or undecodable).
    pub without_image: usize,
    /// Samples whose OCR failed; they keep their previous text.
    pub failures: Vec<OcrFailure>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OcrFailure {
    pub sample_id: String,
    pub image: PathBuf,
    pub error: String,
}

/// Results are written to disk every this many new readings, so an interrupted run over
/// thousands of images keeps most of its work.
const SAVE_EVERY: usize = 32;

/// Sets `ocr_text` of the samples at `wanted` from OCR of their images (see
/// [`OcrPolicy::select`]). `images` is the dataset's image report, in sample order. A failure
/// on one image is recorded in the report and the run goes on; only cache I/O and
/// mismatched inputs are errors. `progress(done, total)` is called after each wanted sample.
pub fn fill_ocr_text(
    samples: &mut [Sample],
    images: &ImageReport,
    wanted: &[usize],
    engine: &dyn OcrEngine,
    cache: &mut OcrCache,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<OcrFillReport> {
    if images.statuses.len() != samples.len() {
        bail!(
            "the image report covers {} samples but the dataset has {}",
            images.statuses.len(),
            samples.len()
        );
    }
    if let Some(&outside) = wanted.iter().find(|&&i| i >= samples.len()) {
        bail!("sample {outside} was asked for, but there are {} samples", samples.len());
    }
    let mut report = OcrFillReport::default();
    for (done, &i) in wanted.iter().enumerate() {
        let sample = &mut samples[i];
        match &images.statuses[i] {
            ImageStatus::Found(path) => match cache.recognize(engine, path) {
                Ok(result) => {
                    if result.cached {
                        report.from_cache += 1;
                    } else {
                        report.recognized += 1;
                    }
                    sample.ocr_text = result.text;
                }
                Err(e) => report.failures.push(OcrFailure {
                    sample_id: sample.sample_id.clone(),
                    image: path.clone(),
                    error: format!("{e:#}"),
                }),
            },
            ImageStatus::Missing | ImageStatus::Undecodable { .. } => report.without_image += 1,
        }
        if cache.unsaved() >= SAVE_EVERY {
            cache.save()?;
        }
        progress(done + 1, wanted.len());
    }
    cache.save()?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::data::Reasoning;

    /// Reads "images" that are text files; fails on files starting with `!`.
    struct TextFileEngine {
        calls: AtomicUsize,
    }

    impl OcrEngine for TextFileEngine {
        fn name(&self) -> &str {
            "text-file"
        }
        fn recognize(&self, image_path: &Path) -> Result<String> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let text = std::fs::read_to_string(image_path)?;
            if text.starts_with('!') {
                bail!("cannot read {}", image_path.display());
            }
            Ok(text)
        }
    }

    fn sample(id: &str, text: &str) -> Sample {
        Sample {
            sample_id: id.into(),
            ocr_text: text.into(),
            labels: vec![0],
            reasoning: Reasoning::default(),
        }
    }

    /// Five samples: "a" has text; "b", "c" and "d" had no `ocr_text` field ("c"'s image is
    /// unreadable, "d" has none); "e" has an empty text (a meme without text) and an image.
    fn fixture(dir: &Path) -> (Vec<Sample>, ImageReport, Vec<usize>) {
        let write = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            ImageStatus::Found(path)
        };
        let samples = ["dataset text a", "", "", "", ""];
        let samples = ["a", "b", "c", "d", "e"].iter().zip(samples).map(|(id, t)| sample(id, t));
        let statuses = vec![
            write("a.png", "ocr a"),
            write("b.png", "ocr b"),
            write("c.png", "!"),
            ImageStatus::Missing,
            write("e.png", "ocr e"),
        ];
        (samples.collect(), ImageReport { statuses }, vec![1, 2, 3])
    }

    fn run(policy: OcrPolicy, dir: &Path) -> (Vec<Sample>, OcrFillReport, Vec<(usize, usize)>) {
        let (mut samples, images, without_text) = fixture(dir);
        let wanted = policy.select(samples.len(), &without_text);
        let engine = TextFileEngine { calls: AtomicUsize::new(0) };
        let mut cache = OcrCache::open(&dir.join("cache"), engine.name()).unwrap();
        let mut ticks = Vec::new();
        let report =
            fill_ocr_text(&mut samples, &images, &wanted, &engine, &mut cache, &mut |d, t| {
                ticks.push((d, t))
            })
            .unwrap();
        (samples, report, ticks)
    }

    fn texts(samples: &[Sample]) -> Vec<&str> {
        samples.iter().map(|s| s.ocr_text.as_str()).collect()
    }

    #[test]
    fn missing_policy_fills_only_records_without_text() {
        let dir = tempfile::tempdir().unwrap();
        let (samples, report, ticks) = run(OcrPolicy::Missing, dir.path());
        assert_eq!(texts(&samples), ["dataset text a", "ocr b", "", "", ""]);
        assert_eq!((report.recognized, report.from_cache, report.without_image), (1, 0, 1));
        assert_eq!(report.failures.len(), 1);
        assert_eq!(report.failures[0].sample_id, "c");
        assert!(report.failures[0].error.contains("c.png"), "{}", report.failures[0].error);
        assert_eq!(ticks, [(1, 3), (2, 3), (3, 3)]);
    }

    #[test]
    fn always_policy_replaces_every_text_and_reuses_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let (samples, report, _) = run(OcrPolicy::Always, dir.path());
        assert_eq!(texts(&samples), ["ocr a", "ocr b", "", "", "ocr e"]);
        assert_eq!((report.recognized, report.from_cache), (3, 0));
        // A second run (new process, same cache folder) reads nothing again.
        let (samples, report, _) = run(OcrPolicy::Always, dir.path());
        assert_eq!(texts(&samples), ["ocr a", "ocr b", "", "", "ocr e"]);
        assert_eq!((report.recognized, report.from_cache), (0, 3));
    }

    #[test]
    fn never_policy_leaves_the_dataset_alone() {
        let dir = tempfile::tempdir().unwrap();
        let (samples, report, ticks) = run(OcrPolicy::Never, dir.path());
        assert_eq!(texts(&samples), ["dataset text a", "", "", "", ""]);
        assert_eq!(report, OcrFillReport::default());
        assert!(ticks.is_empty());
    }

    #[test]
    fn a_report_for_other_samples_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (mut samples, mut images, _) = fixture(dir.path());
        images.statuses.pop();
        let engine = TextFileEngine { calls: AtomicUsize::new(0) };
        let mut cache = OcrCache::open(dir.path(), engine.name()).unwrap();
        let error =
            fill_ocr_text(&mut samples, &images, &[0, 1], &engine, &mut cache, &mut |_, _| {})
                .unwrap_err();
        assert!(error.to_string().contains("covers 4 samples but the dataset has 5"), "{error}");
        assert_eq!(engine.calls.load(Ordering::SeqCst), 0);
    }
}
