//! Computing (or fetching from the cache) the features of one dataset file.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};

use super::Features;
use crate::cache::{hash_file, CacheKey, CacheStatus, FeatureCache};
use crate::config::Config;
use crate::data::{resolve_images, Dataset, ImageStatus};
use crate::encoders::{resolve_model, ModelFiles, TextEncoder, TextEncoderOptions, VisionEncoder};
use crate::events::TrainEvent;

/// What happened while featurising, for the user.
#[derive(Debug, Clone, Default)]
pub struct FeatureReport {
    pub text_cache: Option<CacheStatus>,
    pub image_cache: Option<CacheStatus>,
    /// Samples whose image is missing or undecodable (masked).
    pub masked_images: usize,
    pub image_summary: Option<String>,
    /// Why there are no image features, when there are none.
    pub text_only_reason: Option<String>,
}

/// Images are decoded and encoded this many at a time, so memory stays bounded.
const IMAGE_CHUNK: usize = 256;

/// Features for every sample of `dataset` (one file), with `images_dir` as its image folder.
pub fn featurize(
    config: &Config,
    dataset: &Dataset,
    images_dir: Option<&Path>,
    device: &Device,
    emit: &mut dyn FnMut(TrainEvent),
) -> Result<(Features, FeatureReport)> {
    let mut report = FeatureReport::default();
    let cache = FeatureCache::new(&config.paths.cache);
    let dataset_hash = hash_file(&dataset.source)?;
    let file_label = dataset.source.display().to_string();

    let text = if config.ablation.ocr || config.ablation.figurative {
        let (tensor, status) = text_features(config, dataset, &dataset_hash, &cache, device, emit)?;
        emit(stage("text features", format!("{file_label}: {}", status.describe())));
        report.text_cache = Some(status);
        Some(tensor)
    } else {
        None
    };

    let resolved = images_dir.map(|dir| resolve_images(dir, &dataset.samples));
    let image_paths: Vec<Option<PathBuf>> = match &resolved {
        Some(images) => images
            .statuses
            .iter()
            .map(|status| match status {
                ImageStatus::Found(path) => Some(path.clone()),
                _ => None,
            })
            .collect(),
        None => vec![None; dataset.len()],
    };
    let image = match (image_source(config), &resolved) {
        (Err(reason), _) => {
            emit(stage("text-only", reason.clone()));
            report.text_only_reason = Some(reason);
            None
        }
        (Ok(_), None) => {
            let reason = "text-only: no image folder configured (data.images)".to_string();
            emit(stage("text-only", reason.clone()));
            report.text_only_reason = Some(reason);
            None
        }
        (Ok(model), Some(images)) => {
            report.masked_images = images.masked();
            let summary = images.summary();
            emit(stage("images", format!("{file_label}: {summary}")));
            report.image_summary = Some(summary);
            let key = image_key(config, model, &dataset_hash, &images.statuses)?;
            let cache_rows = dataset.len();
            let (tensor, status) = cache.get_or_compute(&key, cache_rows, || {
                encode_images(config, model, images, device, emit)
            })?;
            emit(stage("image features", format!("{file_label}: {}", status.describe())));
            report.image_cache = Some(status);
            Some(tensor)
        }
    };
    if text.is_none() && image.is_none() {
        bail!(
            "nothing to learn from: the text stream is off (ablation.ocr and ablation.figurative) \
             and there are no image features ({})",
            report.text_only_reason.as_deref().unwrap_or("no images")
        );
    }
    Ok((Features { text, image, images: image_paths }, report))
}

fn stage(name: &str, detail: String) -> TrainEvent {
    TrainEvent::Stage { name: name.to_string(), detail }
}

/// The vision model, or why the run is text-only.
fn image_source(config: &Config) -> std::result::Result<&str, String> {
    if !config.ablation.image {
        return Err("text-only: the image module is switched off (ablation.image)".into());
    }
    let Some(model) = config.vision_encoder.model.as_deref() else {
        return Err("text-only: no vision encoder configured (vision_encoder.model)".into());
    };
    Ok(model)
}

fn text_features(
    config: &Config,
    dataset: &Dataset,
    dataset_hash: &str,
    cache: &FeatureCache,
    device: &Device,
    emit: &mut dyn FnMut(TrainEvent),
) -> Result<(Tensor, CacheStatus)> {
    let settings = &config.text_encoder;
    let files = resolve_model(&settings.model, true)?;
    let texts = model_texts(config, dataset);
    let key = text_cache_key(config, &files, dataset_hash)?;
    cache.get_or_compute(&key, texts.len(), || {
        let options = TextEncoderOptions {
            max_length: settings.max_length,
            layers: settings.layers,
            pooling: settings.pooling,
            batch_size: settings.batch_size,
        };
        let encoder = TextEncoder::load(&files, device, options)
            .with_context(|| format!("loading text encoder {}", settings.model))?;
        let started = Instant::now();
        let features = {
            let mut report = progress_reporter("encoding text", started, &mut *emit);
            encoder.encode(&texts, &mut report)?
        };
        emit(stage(
            "encoded text",
            format!(
                "{} texts in {:.1}s ({:.1} texts/s)",
                texts.len(),
                started.elapsed().as_secs_f64(),
                texts.len() as f64 / started.elapsed().as_secs_f64().max(1e-9)
            ),
        ));
        Ok(features)
    })
}

/// The text each sample gives the text encoder under the config's ablation switches.
pub fn model_texts(config: &Config, dataset: &Dataset) -> Vec<String> {
    dataset
        .samples
        .iter()
        .map(|s| s.model_text(config.ablation.ocr, config.ablation.figurative))
        .collect()
}

/// The cache key of a dataset file's text features (`dataset_hash`: [`hash_file`] of it).
pub fn text_cache_key(config: &Config, files: &ModelFiles, dataset_hash: &str) -> Result<CacheKey> {
    let settings = &config.text_encoder;
    Ok(CacheKey::new("text")
        .with("model", files.fingerprint()?)
        .with("dataset_sha256", dataset_hash)
        .with("text_fields", text_fields(config))
        .with("max_length", settings.max_length)
        .with("layers", settings.layers)
        .with("pooling", format!("{:?}", settings.pooling)))
}

fn text_fields(config: &Config) -> &'static str {
    match (config.ablation.ocr, config.ablation.figurative) {
        (true, true) => "ocr+figurative",
        (true, false) => "ocr",
        (false, true) => "figurative",
        (false, false) => "none",
    }
}

/// Images change without the dataset file changing, so the key covers each image's
/// path, size and modification time.
fn image_key(
    config: &Config,
    model: &str,
    dataset_hash: &str,
    statuses: &[ImageStatus],
) -> Result<CacheKey> {
    use sha2::{Digest, Sha256};
    let files = resolve_model(model, false)?;
    let mut hasher = Sha256::new();
    for status in statuses {
        match status {
            ImageStatus::Found(path) => {
                let meta = std::fs::metadata(path)
                    .with_context(|| format!("reading image {}", path.display()))?;
                let modified =
                    meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
                hasher.update(format!("{}|{}|{modified:?}\n", path.display(), meta.len()));
            }
            _ => hasher.update(b"masked\n"),
        }
    }
    let images_digest: String = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok(CacheKey::new("image")
        .with("model", files.fingerprint()?)
        .with("dataset_sha256", dataset_hash)
        .with("images", images_digest)
        .with("layers", config.vision_encoder.layers)
        .with("preprocess", "clip-224-bicubic-centercrop-v1"))
}

fn encode_images(
    config: &Config,
    model: &str,
    images: &crate::data::ImageReport,
    device: &Device,
    emit: &mut dyn FnMut(TrainEvent),
) -> Result<Tensor> {
    let files = resolve_model(model, false)?;
    let settings = &config.vision_encoder;
    let encoder = VisionEncoder::load(&files, device, settings.layers, settings.batch_size)
        .with_context(|| format!("loading vision encoder {model}"))?;
    let present: Vec<usize> = (0..images.statuses.len())
        .filter(|&i| matches!(images.statuses[i], ImageStatus::Found(_)))
        .collect();
    let started = Instant::now();
    let mut rows: Vec<Option<Tensor>> = vec![None; images.statuses.len()];
    for chunk in present.chunks(IMAGE_CHUNK) {
        let mut decoded = Vec::with_capacity(chunk.len());
        let mut kept = Vec::with_capacity(chunk.len());
        for &i in chunk {
            // A file that decoded during resolution but fails now is masked like any other.
            if let Some(image) = images.load(i) {
                decoded.push(image);
                kept.push(i);
            }
        }
        let encoded = encoder.encode(&decoded, &mut |_, _| {})?;
        for (row, &i) in kept.iter().enumerate() {
            rows[i] = Some(encoded.get(row)?);
        }
        let done = rows.iter().filter(|r| r.is_some()).count();
        let per_second = done as f64 / started.elapsed().as_secs_f64().max(1e-9);
        emit(TrainEvent::Progress {
            stage: "encoding images".into(),
            done,
            total: present.len(),
            per_second,
        });
    }
    let (layers, width) = (settings.layers, encoder.hidden_size());
    let zeros = Tensor::zeros((layers, width), DType::F32, &Device::Cpu)?;
    let rows: Vec<Tensor> = rows.into_iter().map(|r| r.unwrap_or_else(|| zeros.clone())).collect();
    Ok(Tensor::stack(&rows, 0)?)
}

/// A progress callback that turns encoder progress into throttled `Progress` events.
fn progress_reporter<'a>(
    stage_name: &'a str,
    started: Instant,
    emit: &'a mut dyn FnMut(TrainEvent),
) -> impl FnMut(usize, usize) + 'a {
    let mut last_report = Instant::now();
    move |done, total| {
        if done == total || last_report.elapsed().as_millis() >= 200 {
            last_report = Instant::now();
            emit(TrainEvent::Progress {
                stage: stage_name.to_string(),
                done,
                total,
                per_second: done as f64 / started.elapsed().as_secs_f64().max(1e-9),
            });
        }
    }
}
