//! Reading one dataset file for a run: its records, its images, and the text of the
//! records that `data.ocr` says to read off their images.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::ValueEnum;

use crate::config::Config;
use crate::data::{resolve_images, Dataset, ImageReport};
use crate::events::TrainEvent;
use crate::features::FeatureInput;
use crate::ocr::{fill_ocr_text, OcrCache, OcrEngine, OcrFillReport, OcrPolicy, Tesseract};

/// A dataset file with its text complete and its images resolved.
pub struct ResolvedDataset {
    pub dataset: Dataset,
    /// Each sample's image; `None` without an image folder.
    pub images: Option<ImageReport>,
}

impl ResolvedDataset {
    /// What the feature extractor needs of it.
    pub fn feature_input(&self) -> FeatureInput<'_> {
        FeatureInput {
            name: self.dataset.source.display().to_string(),
            samples: &self.dataset.samples,
            images: self.images.as_ref(),
        }
    }
}

/// Where OCR results are cached: beside the encoder features.
pub fn ocr_cache_dir(config: &Config) -> PathBuf {
    config.paths.cache.join("ocr")
}

/// Reads `path` in the config's format and resolves its images in `images_dir`. Records
/// may lack `ocr_text` only when OCR can supply it (`data.ocr` is not `never` and there is
/// an image folder); otherwise such a record is the reader's usual error.
pub fn load_dataset(
    config: &Config,
    path: &Path,
    images_dir: Option<&Path>,
    emit: &mut dyn FnMut(TrainEvent),
) -> Result<ResolvedDataset> {
    let policy = config.data.ocr;
    let format = config.data.format;
    let (mut dataset, without_text) = match images_dir {
        Some(_) if policy != OcrPolicy::Never => Dataset::load_allowing_missing_text(path, format)?,
        _ => (Dataset::load(path, format)?, Vec::new()),
    };
    if dataset.unlabelled() > 0 {
        emit(TrainEvent::Stage {
            name: "data".into(),
            detail: format!(
                "{}: {} of {} records have no label (none of the categories applies)",
                path.display(),
                dataset.unlabelled(),
                dataset.len()
            ),
        });
    }
    let images = images_dir.map(|dir| resolve_images(dir, &dataset.samples));
    let wanted = policy.select(dataset.len(), &without_text);
    if let (Some(images), false) = (&images, wanted.is_empty()) {
        let engine = Tesseract::new().with_context(|| {
            format!(
                "{}: {} of {} records need their text read by OCR (data.ocr = \"{}\")",
                path.display(),
                wanted.len(),
                dataset.len(),
                policy.to_possible_value().map_or_else(String::new, |v| v.get_name().to_owned())
            )
        })?;
        read_texts(config, &mut dataset, images, &wanted, &engine, emit)?;
    }
    Ok(ResolvedDataset { dataset, images })
}

/// Fills the text of the samples at `wanted` by OCR (through the cache) and tells the user
/// how it went.
fn read_texts(
    config: &Config,
    dataset: &mut Dataset,
    images: &ImageReport,
    wanted: &[usize],
    engine: &dyn OcrEngine,
    emit: &mut dyn FnMut(TrainEvent),
) -> Result<()> {
    let mut cache = OcrCache::open(&ocr_cache_dir(config), engine.name())?;
    let started = Instant::now();
    let report = {
        let mut progress = |done: usize, total: usize| {
            emit(TrainEvent::Progress {
                stage: "reading text (OCR)".into(),
                done,
                total,
                per_second: done as f64 / started.elapsed().as_secs_f64().max(1e-9),
            })
        };
        fill_ocr_text(&mut dataset.samples, images, wanted, engine, &mut cache, &mut progress)?
    };
    emit(TrainEvent::Stage {
        name: "ocr".into(),
        detail: format!("{}: {}", dataset.source.display(), describe(&report, wanted.len())),
    });
    Ok(())
}

/// E.g. `12 texts by OCR (9 read, 3 cached); 1 without an image; 1 failed (first: …)`.
fn describe(report: &OcrFillReport, wanted: usize) -> String {
    let mut line =
        format!("{wanted} texts by OCR ({} read, {} cached)", report.recognized, report.from_cache);
    if report.without_image > 0 {
        line.push_str(&format!("; {} without a readable image", report.without_image));
    }
    if let Some(first) = report.failures.first() {
        line.push_str(&format!(
            "; {} failed, left empty (first: {}: {})",
            report.failures.len(),
            first.sample_id,
            first.error
        ));
    }
    line
}
