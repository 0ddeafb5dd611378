//! `memescope bench`: how fast the engine is on this machine.
//!
//! Measures, in one process: the frozen text encoder itself (never a cache read), head
//! training on the features it produced (the real trainer, on a private feature cache
//! filled with them), optionally the leave-one-out ablation sweep, and the process's peak
//! resident memory. Everything it writes goes to a scratch directory that is removed
//! afterwards; the user's cache and runs are not touched.

mod finetune;
mod npy;
mod process;
mod synthetic;
mod table;

pub use finetune::{
    export_finetune, render_finetune, FinetuneBatchTensors, FinetuneReport, Hyperparams,
};
pub use npy::write_npy_f32;
pub use process::{cpu_seconds, load_average, peak_rss_bytes};
pub use synthetic::write_axiom_records;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::Device;
use serde::Serialize;

use crate::cache::FeatureCache;
use crate::config::Config;
use crate::data::{Dataset, DatasetFormat};
use crate::encoders::{resolve_model, TextEncoder, TextEncoderOptions};
use crate::events::{EventSink, TrainEvent};
use crate::features::{model_texts, text_cache_key};
use crate::plan::Plan;
use crate::train::{describe_device, select_device, StopFlag};

/// The real AxiOM training file, relative to the crate root (see the data README).
pub const DEFAULT_DATA: &str = "../shared/data/axiom/train.json";
/// Records generated when no data file is given and the real one is absent.
const GENERATED_RECORDS: usize = 512;

#[derive(Debug, Clone, Default)]
pub struct BenchOptions {
    /// Records to encode and train on (JSON array in `config.data.format`). `None`: the
    /// real AxiOM file when present, generated AxiOM-format records otherwise.
    pub data: Option<PathBuf>,
    /// Use only the first `limit` records.
    pub limit: Option<usize>,
    /// Epochs of the timed head-training run.
    pub epochs: usize,
    /// Also time the leave-one-out ablation sweep (with the config's own epochs).
    pub sweep: bool,
    /// Write the encoder output `(texts, layers, hidden)` as `.npy`, in record order.
    pub dump_embeddings: Option<PathBuf>,
}

/// What `bench` measured. Rates are per second of wall-clock time.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub data: String,
    pub text_encoder: String,
    /// Where the tensors ran (`cpu`, `cuda`): the device opened, not the one asked for.
    pub device: String,
    /// Threads candle's CPU kernels use (`RAYON_NUM_THREADS`, else every core).
    pub threads: usize,
    pub texts: usize,
    /// Tokens after truncation, special tokens included, no padding.
    pub tokens: usize,
    pub max_length: usize,
    pub encode_batch_size: usize,
    pub encode_seconds: f64,
    /// CPU time of all threads while encoding: the work, whatever else the machine runs.
    pub encode_cpu_seconds: f64,
    pub encode_texts_per_s: f64,
    pub encode_tokens_per_s: f64,
    pub train_samples: usize,
    pub epochs: usize,
    /// Mean wall time of an epoch: training steps, validation and checkpoints.
    pub epoch_seconds: f64,
    /// Training steps only (forward, backward, optimiser), over all epochs.
    pub train_samples_per_s: f64,
    /// CPU time of the whole timed training run (data, steps, validation, checkpoints).
    pub train_cpu_seconds: f64,
    /// Time from the start of the run to its first step (data, cached features, model).
    pub prepare_seconds: f64,
    pub sweep: Option<SweepTiming>,
    /// `VmHWM` at the end: the most memory the whole benchmark held at once.
    pub peak_memory_mb: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SweepTiming {
    pub runs: usize,
    /// Runs that ended in an error (for example "-ocr" on text-only data).
    pub failed: Vec<String>,
    pub seconds: f64,
    pub epochs_run: usize,
}

pub use table::render_table;

pub fn run(config: Config, options: &BenchOptions) -> Result<BenchReport> {
    let scratch = Scratch::create()?;
    let mut config = config.absolutized()?;
    let (data, generated) = resolve_data(options.data.as_deref(), &scratch.path)?;
    if generated || options.data.is_none() {
        config.data.format = DatasetFormat::Axiom;
    }
    let source = data.clone();
    let data = match options.limit {
        Some(limit) => first_records(&data, limit, &scratch.path)?,
        None => data,
    };
    config.data.train = std::path::absolute(&data)?;
    config.data.validation = None;
    // The text encoder is what is measured; images would add an uncached vision pass.
    config.data.images = None;
    config.paths.cache = scratch.path.join("cache");
    config.paths.runs = scratch.path.join("runs");
    let device = select_device(&config.train.device)?;
    let dataset = Dataset::load(&config.data.train, config.data.format)?;
    let data_label = if generated {
        format!("{} generated records", dataset.len())
    } else {
        format!("{} ({} records)", source.display(), dataset.len())
    };

    let encoded = encode(&config, &dataset, &device)?;
    if let Some(path) = &options.dump_embeddings {
        let values = encoded.features.flatten_all()?.to_vec1::<f32>()?;
        write_npy_f32(path, encoded.features.dims(), &values)?;
    }
    let files = resolve_model(&config.text_encoder.model, true)?;
    let key = text_cache_key(&config, &files, &model_texts(&config, &dataset.samples))?;
    FeatureCache::new(&config.paths.cache)
        .get_or_compute(&key, dataset.len(), || Ok(encoded.features.clone()))?;

    let cpu_before_training = cpu_seconds().unwrap_or(0.0);
    let training = time_run(&Config {
        train: crate::config::TrainConfig {
            epochs: options.epochs.max(1),
            patience: 0,
            ..config.train.clone()
        },
        ..config.clone()
    })?;
    let train_cpu_seconds = cpu_seconds().unwrap_or(0.0) - cpu_before_training;
    if let Some(message) = training.failure {
        bail!("the timed training run failed: {message}");
    }
    let sweep = if options.sweep { Some(time_sweep(&config)?) } else { None };

    let threads = candle_core::utils::get_num_threads();
    let settings = &config.text_encoder;
    Ok(BenchReport {
        data: data_label,
        text_encoder: settings.model.clone(),
        device: describe_device(&device),
        threads,
        texts: dataset.len(),
        tokens: encoded.tokens,
        max_length: settings.max_length,
        encode_batch_size: settings.batch_size,
        encode_seconds: encoded.seconds,
        encode_cpu_seconds: encoded.cpu_seconds,
        encode_texts_per_s: dataset.len() as f64 / encoded.seconds.max(1e-9),
        encode_tokens_per_s: encoded.tokens as f64 / encoded.seconds.max(1e-9),
        train_samples: training.train_samples,
        epochs: training.epoch_seconds.len(),
        epoch_seconds: mean(&training.epoch_seconds),
        train_samples_per_s: training.step_samples as f64 / training.step_seconds.max(1e-9),
        train_cpu_seconds,
        prepare_seconds: training.prepare_seconds,
        sweep,
        peak_memory_mb: peak_rss_bytes().unwrap_or(0) as f64 / (1024.0 * 1024.0),
    })
}

/// The data file to use and whether it was generated.
fn resolve_data(data: Option<&Path>, scratch: &Path) -> Result<(PathBuf, bool)> {
    if let Some(path) = data {
        if !path.is_file() {
            bail!("--data {}: no such file", path.display());
        }
        return Ok((path.to_path_buf(), false));
    }
    let real = PathBuf::from(DEFAULT_DATA);
    if real.is_file() {
        return Ok((real, false));
    }
    let path = scratch.join("generated.json");
    write_axiom_records(&path, GENERATED_RECORDS, 42)?;
    Ok((path, true))
}

/// Copies the first `limit` records of the JSON array in `path` into the scratch folder.
fn first_records(path: &Path, limit: usize, scratch: &Path) -> Result<PathBuf> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let records: Vec<serde_json::Value> = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a JSON array of records", path.display()))?;
    let kept: Vec<_> = records.into_iter().take(limit).collect();
    let out = scratch.join("limited.json");
    std::fs::write(&out, serde_json::to_string(&kept)?)
        .with_context(|| format!("writing {}", out.display()))?;
    Ok(out)
}

struct Encoded {
    features: candle_core::Tensor,
    tokens: usize,
    seconds: f64,
    cpu_seconds: f64,
}

/// Loads the text encoder (not timed) and times `TextEncoder::encode` over every text.
fn encode(config: &Config, dataset: &Dataset, device: &Device) -> Result<Encoded> {
    let files = resolve_model(&config.text_encoder.model, true)?;
    let encoder =
        TextEncoder::load(&files, device, TextEncoderOptions::from_config(&config.text_encoder))
            .with_context(|| format!("loading text encoder {}", config.text_encoder.model))?;
    let texts = model_texts(config, &dataset.samples);
    let tokens = encoder
        .tokenizer()
        .encode_batch(texts.iter().map(String::as_str).collect::<Vec<_>>(), true)
        .map_err(|e| anyhow::anyhow!("tokenising: {e}"))?
        .iter()
        .map(|encoding| encoding.get_ids().len())
        .sum();
    let (started, cpu_before) = (Instant::now(), cpu_seconds().unwrap_or(0.0));
    let features = encoder.encode(&texts, &mut |_, _| {})?;
    Ok(Encoded {
        features,
        tokens,
        seconds: started.elapsed().as_secs_f64(),
        cpu_seconds: cpu_seconds().unwrap_or(0.0) - cpu_before,
    })
}

/// What one training run's events say about its speed.
#[derive(Debug, Default)]
struct RunTiming {
    train_samples: usize,
    epoch_seconds: Vec<f64>,
    step_samples: usize,
    step_seconds: f64,
    prepare_seconds: f64,
    failure: Option<String>,
    /// Every step's record, in order.
    steps: Vec<crate::events::StepRecord>,
    /// CPU time of this process from the run's start to its latest step: its steps' work
    /// (and the optimizer's set-up) in a one-epoch run.
    cpu_to_last_step: f64,
    cpu_at_start: f64,
    /// Each epoch's training loss.
    train_losses: Vec<f32>,
}

/// Collects the timing-relevant events of a run as it happens.
struct TimingSink {
    started: Instant,
    timing: RunTiming,
}

impl EventSink for TimingSink {
    fn emit(&mut self, event: &TrainEvent) -> Result<()> {
        let timing = &mut self.timing;
        match event {
            TrainEvent::RunStarted(info) => {
                timing.train_samples = info.train_samples;
                timing.prepare_seconds = self.started.elapsed().as_secs_f64();
                timing.cpu_at_start = cpu_seconds().unwrap_or(0.0);
            }
            TrainEvent::Step(step) => {
                timing.step_samples += step.samples;
                timing.step_seconds += step.samples as f64 / step.samples_per_second.max(1e-9);
                timing.steps.push(step.clone());
                timing.cpu_to_last_step = cpu_seconds().unwrap_or(0.0) - timing.cpu_at_start;
            }
            TrainEvent::Epoch(epoch) => {
                timing.epoch_seconds.push(epoch.seconds);
                timing.train_losses.push(epoch.train_loss);
            }
            TrainEvent::Failed { message } => timing.failure = Some(message.clone()),
            _ => {}
        }
        Ok(())
    }
}

fn time_run(config: &Config) -> Result<RunTiming> {
    let mut sink = TimingSink { started: Instant::now(), timing: RunTiming::default() };
    if let Err(error) = crate::train::run(config.clone(), &mut sink, &StopFlag::default()) {
        sink.timing.failure.get_or_insert_with(|| format!("{error:#}"));
    }
    Ok(sink.timing)
}

/// Runs the leave-one-out sweep one run after another, as the dashboard does.
fn time_sweep(config: &Config) -> Result<SweepTiming> {
    let plan = Plan::leave_one_out(config, crate::plan::data_has_reasoning(config));
    let started = Instant::now();
    let mut failed = Vec::new();
    let mut epochs_run = 0;
    for run in &plan.runs {
        let timing = time_run(&run.config)?;
        epochs_run += timing.epoch_seconds.len();
        if timing.failure.is_some() {
            failed.push(run.label.clone());
        }
    }
    Ok(SweepTiming {
        runs: plan.len(),
        failed,
        seconds: started.elapsed().as_secs_f64(),
        epochs_run,
    })
}

fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        0.0
    } else {
        values.iter().sum::<f64>() / values.len() as f64
    }
}

/// A private directory under the system temp dir, removed when dropped.
struct Scratch {
    path: PathBuf,
}

impl Scratch {
    fn create() -> Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path =
            std::env::temp_dir().join(format!("memescope-bench-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Self { path })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
