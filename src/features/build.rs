//! Computing (or fetching from the cache) the features of a set of samples: a dataset file
//! or unlabelled images.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use sha2::{Digest, Sha256};

use super::{Features, LexicalFeatures, LexicalSpec, TokenStates};
use crate::cache::{CacheKey, CacheStatus, FeatureCache};
use crate::config::Config;
use crate::data::{ImageReport, ImageStatus, Sample};
use crate::encoders::{
    resolve_model, resolve_model_reporting, Download, HubSettings, ModelFiles, TextEncoder,
    TextEncoderOptions, VisionEncoder,
};
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

/// Samples to featurise: a dataset file's records, or unlabelled images to predict.
pub struct FeatureInput<'a> {
    /// Names the samples in messages: the dataset file, or e.g. "3 images".
    pub name: String,
    pub samples: &'a [Sample],
    /// Each sample's image, in sample order; `None` when there is no image folder.
    pub images: Option<&'a ImageReport>,
}

/// Features for every sample of `input`. Cached features are keyed by content (the texts the
/// encoder sees; each image's path, size and modification time), never by where the samples
/// came from: texts filled in by OCR, or ad-hoc images, are cached as correctly as a file.
pub fn featurize_samples(
    config: &Config,
    input: &FeatureInput,
    device: &Device,
    emit: &mut dyn FnMut(TrainEvent),
) -> Result<(Features, FeatureReport)> {
    let mut report = FeatureReport::default();
    let cache = FeatureCache::new(&config.paths.cache);
    let name = &input.name;
    if let Some(images) = input.images {
        if images.statuses.len() != input.samples.len() {
            bail!(
                "{name}: the image report covers {} samples but there are {}",
                images.statuses.len(),
                input.samples.len()
            );
        }
    }

    let (mut text, mut tokens) = (None, None);
    if config.ablation.ocr || config.ablation.figurative {
        let status = if config.text_encoder.finetune_layers > 0 {
            let (states, status) = token_states(config, input.samples, &cache, device, emit)?;
            tokens = Some(states);
            status
        } else {
            let (tensor, status) = text_features(config, input.samples, &cache, device, emit)?;
            text = Some(tensor);
            status
        };
        emit(stage("text features", format!("{name}: {}", status.describe())));
        report.text_cache = Some(status);
    }

    // Cheap to compute (no encoder), so it is not cached.
    let lexical = config.ablation.lexical.then(|| {
        let texts: Vec<String> = input
            .samples
            .iter()
            .map(|s| s.model_text(config.ablation.ocr, config.ablation.figurative))
            .collect();
        LexicalFeatures::of_texts(&texts, LexicalSpec::of(&config.model))
    });

    let image_paths: Vec<Option<PathBuf>> = match input.images {
        Some(images) => images
            .statuses
            .iter()
            .map(|status| match status {
                ImageStatus::Found(path) => Some(path.clone()),
                _ => None,
            })
            .collect(),
        None => vec![None; input.samples.len()],
    };
    let image = match (image_source(config), input.images) {
        (Err(reason), _) => {
            emit(stage("images", reason.clone()));
            report.text_only_reason = Some(reason);
            None
        }
        (Ok(_), None) => {
            let reason = "text-only: no image folder configured (data.images)".to_string();
            emit(stage("images", reason.clone()));
            report.text_only_reason = Some(reason);
            None
        }
        (Ok(model), Some(images)) => {
            report.masked_images = images.masked();
            let summary = images.summary();
            emit(stage("images", format!("{name}: {summary}")));
            report.image_summary = Some(summary);
            let files = resolve_reporting(model, false, emit)?;
            let key = image_key(config, &files, &images.statuses)?;
            let (tensor, status) = cache.get_or_compute(&key, input.samples.len(), || {
                encode_images(config, model, images, device, emit)
            })?;
            emit(stage("image features", format!("{name}: {}", status.describe())));
            report.image_cache = Some(status);
            Some(tensor)
        }
    };
    if text.is_none() && tokens.is_none() && image.is_none() {
        bail!(
            "nothing to learn from: the text stream is off (ablation.ocr and ablation.figurative) \
             and there are no image features ({})",
            report.text_only_reason.as_deref().unwrap_or("no images")
        );
    }
    Ok((Features { text, tokens, image, lexical, images: image_paths }, report))
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
    samples: &[Sample],
    cache: &FeatureCache,
    device: &Device,
    emit: &mut dyn FnMut(TrainEvent),
) -> Result<(Tensor, CacheStatus)> {
    let settings = &config.text_encoder;
    let files = resolve_reporting(&settings.model, true, emit)?;
    let texts = model_texts(config, samples);
    let key = text_cache_key(config, &files, &texts)?;
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

/// The frozen hidden states entering the lowest fine-tuned layer, for every token of every
/// text. Two cache entries: the texts' token counts (one row per text) and their states
/// (one row per token). A cold run encodes once and stores both.
fn token_states(
    config: &Config,
    samples: &[Sample],
    cache: &FeatureCache,
    device: &Device,
    emit: &mut dyn FnMut(TrainEvent),
) -> Result<(TokenStates, CacheStatus)> {
    let settings = &config.text_encoder;
    let files = resolve_reporting(&settings.model, true, emit)?;
    let texts = model_texts(config, samples);
    let layers = crate::encoders::text_model::read_config(&files.config)?.num_layers();
    let Some(from_layer) = layers.checked_sub(settings.finetune_layers) else {
        bail!(
            "text_encoder.finetune_layers = {} is more than the {layers} layers of `{}`",
            settings.finetune_layers,
            settings.model
        );
    };
    let key =
        text_key(config, &files, &texts)?.with("kind", "tokens").with("from_layer", from_layer);
    let mut encoded: Option<Tensor> = None;
    let encode = |emit: &mut dyn FnMut(TrainEvent)| -> Result<(Tensor, Vec<usize>)> {
        let encoder = TextEncoder::load(&files, device, TextEncoderOptions::from_config(settings))
            .with_context(|| format!("loading text encoder {}", settings.model))?;
        let started = Instant::now();
        let mut report = progress_reporter("encoding text tokens", started, &mut *emit);
        encoder.encode_tokens(&texts, from_layer, &mut report)
    };
    let (lengths, lengths_status) =
        cache.get_or_compute(&key.clone().with("part", "lengths"), texts.len(), || {
            let (states, lengths) = encode(&mut *emit)?;
            encoded = Some(states);
            let lengths: Vec<f32> = lengths.iter().map(|&len| len as f32).collect();
            Ok(Tensor::from_vec(lengths, texts.len(), &Device::Cpu)?)
        })?;
    // Token counts are at most max_length, so f32 holds them exactly.
    let lengths: Vec<usize> = lengths.to_vec1::<f32>()?.into_iter().map(|l| l as usize).collect();
    let total = lengths.iter().sum();
    let (states, status) =
        cache.get_or_compute(&key.with("part", "states"), total, || match encoded.take() {
            Some(states) => Ok(states),
            None => Ok(encode(&mut *emit)?.0),
        })?;
    let states = TokenStates::new(states, &lengths)
        .with_context(|| format!("the cached token states of {} texts", texts.len()))?;
    // The lengths entry decides whether the encoder ran; report the states entry's status
    // unless only the lengths had to be rebuilt.
    let status = if lengths_status.is_hit() { status } else { lengths_status };
    Ok((states, status))
}

/// Resolves an encoder, showing a download from the hub as progress in MiB (the status
/// line and headless progress show it like encoding progress).
fn resolve_reporting(
    spec: &str,
    needs_tokenizer: bool,
    emit: &mut dyn FnMut(TrainEvent),
) -> Result<ModelFiles> {
    let hub = HubSettings::from_env();
    resolve_model_reporting(spec, needs_tokenizer, &hub, &mut |download: &Download| {
        let done = download.done_bytes >> 20;
        emit(TrainEvent::Progress {
            stage: format!("downloading {} (MiB)", download.file),
            done,
            total: download.total_bytes.div_ceil(1 << 20),
            per_second: if download.seconds > 0.0 { done as f64 / download.seconds } else { 0.0 },
        })
    })
}

/// The text the encoder sees of each sample.
pub fn model_texts(config: &Config, samples: &[Sample]) -> Vec<String> {
    samples.iter().map(|s| s.model_text(config.ablation.ocr, config.ablation.figurative)).collect()
}

/// The cache key of the pooled text features of `texts`.
pub fn text_cache_key(config: &Config, files: &ModelFiles, texts: &[String]) -> Result<CacheKey> {
    Ok(text_key(config, files, texts)?
        .with("layers", config.text_encoder.layers)
        .with("pooling", format!("{:?}", config.text_encoder.pooling)))
}

/// What any encoding of `texts` by the configured text encoder depends on.
fn text_key(config: &Config, files: &ModelFiles, texts: &[String]) -> Result<CacheKey> {
    Ok(CacheKey::new("text")
        .with("model", files.fingerprint()?)
        .with("texts_sha256", texts_digest(texts))
        .with("text_fields", text_fields(config))
        .with("max_length", config.text_encoder.max_length))
}

fn text_fields(config: &Config) -> &'static str {
    match (config.ablation.ocr, config.ablation.figurative) {
        (true, true) => "ocr+figurative",
        (true, false) => "ocr",
        (false, true) => "figurative",
        (false, false) => "none",
    }
}

/// The sha256 of the texts in order, each prefixed by its length so that no two different
/// lists of texts hash alike.
fn texts_digest(texts: &[String]) -> String {
    let mut hasher = Sha256::new();
    for text in texts {
        hasher.update((text.len() as u64).to_le_bytes());
        hasher.update(text.as_bytes());
    }
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Images change without any dataset file changing, so the key covers each row's image
/// path, size and modification time (hashing every image's bytes on each run would cost
/// seconds on a real dataset; a rewritten image gets a new modification time).
fn image_key(config: &Config, files: &ModelFiles, statuses: &[ImageStatus]) -> Result<CacheKey> {
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
        .with("images", images_digest)
        .with("layers", config.vision_encoder.layers)
        .with("preprocess", "clip-224-bicubic-centercrop-v1"))
}

fn encode_images(
    config: &Config,
    model: &str,
    images: &ImageReport,
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
