//! `memescope bench --finetune-export DIR`: hands a reference implementation (PyTorch,
//! `scripts/bench_finetune_pytorch.py`) exactly the work of one fine-tuning epoch, then
//! runs that epoch with the real trainer and records its time and losses beside it.
//!
//! DIR receives:
//! - `initial.safetensors`: every variable of the model right after `train::build_model`
//!   (the fusion head's seeded weights and the pretrained fine-tuned layers), by the
//!   names memescope gives them;
//! - `batches.safetensors`: epoch 1's batches in the trainer's order, as the trainer
//!   assembles them ([`FinetuneBatchTensors`] names each tensor);
//! - `hyperparams.json`: the config the epoch runs with, the schedule's step counts, the
//!   optimizer's constants and the text encoder's `config.json` ([`Hyperparams`]);
//! - `memescope.json`: what the real trainer did with them ([`FinetuneReport`]).
//!
//! Dropout is set to 0 (the reference cannot draw memescope's masks), the run has one
//! epoch (so the learning-rate schedule spans that epoch) and no image stream.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use serde::Serialize;

use super::{first_records, load_average, time_run, Scratch};
use crate::config::Config;
use crate::encoders::resolve_model;
use crate::encoders::text_model::read_config;
use crate::runs::write_json;
use crate::train::{batch, build_model, epoch_order, prepare, select_device, LrSchedule, Targets};

/// The names of batch `step`'s tensors in `batches.safetensors` (0-based, zero-padded to
/// four digits so that they sort in step order).
pub struct FinetuneBatchTensors;

impl FinetuneBatchTensors {
    /// `(batch, seq, hidden)` f32: the cached token states entering the fine-tuned layers,
    /// zero past each text's end.
    pub fn states(step: usize) -> String {
        format!("{step:04}.states")
    }
    /// `(batch, seq)` u32: 1 for a real token, 0 for padding.
    pub fn mask(step: usize) -> String {
        format!("{step:04}.mask")
    }
    /// `(nonzeros, 2)` u32 `(row, bucket)` of the lexical features (dense `(batch,
    /// buckets)` in the trainer; absent without the lexical expert).
    pub fn lexical_index(step: usize) -> String {
        format!("{step:04}.lexical_index")
    }
    /// `(nonzeros,)` f32: the values at `lexical_index`.
    pub fn lexical_value(step: usize) -> String {
        format!("{step:04}.lexical_value")
    }
    /// Single-label `(batch,)` u32 class ids; multi-label `(batch, labels)` f32 0/1.
    pub fn targets(step: usize) -> String {
        format!("{step:04}.targets")
    }
    /// `(batch,)` u32: the training samples of the step (indices into the train split).
    pub fn samples(step: usize) -> String {
        format!("{step:04}.samples")
    }
}

/// `hyperparams.json`: everything besides the weights and batches that the reference
/// needs to do what the trainer does.
#[derive(Debug, Serialize)]
pub struct Hyperparams {
    /// The config the epoch runs with (dropout 0, one epoch, no images).
    pub config: Config,
    pub steps: usize,
    /// The schedule's length and warmup (`train::schedule`): warmup-linear over `steps`.
    pub total_steps: usize,
    pub warmup_steps: usize,
    pub adam_beta1: f64,
    pub adam_beta2: f64,
    pub adam_eps: f64,
    pub num_labels: usize,
    pub multi_label: bool,
    /// The fine-tuned layers' indices in the encoder (bottom first).
    pub finetuned_layers: Vec<usize>,
    /// The text encoder's `config.json` (heads, layer-norm eps, activation).
    pub encoder_config: serde_json::Value,
    pub train_samples: usize,
}

/// What one epoch of the real trainer did with the exported work (`memescope.json`).
#[derive(Debug, Clone, Serialize)]
pub struct FinetuneReport {
    pub dir: PathBuf,
    pub train_samples: usize,
    pub steps: usize,
    /// Threads candle's CPU kernels use.
    pub threads: usize,
    /// The epoch's training steps only (batch assembly, forward, backward, clipping,
    /// optimizer), summed; no validation, no checkpoints.
    pub epoch_step_seconds: f64,
    /// CPU time (all threads) from the run's start to its last step: the load-insensitive
    /// measure of the same work.
    pub epoch_cpu_seconds: f64,
    /// The epoch's training loss as the trainer reports it: the mean of the step losses
    /// weighted by batch size.
    pub mean_loss: f64,
    pub last_step_loss: f32,
    pub step_losses: Vec<f32>,
    /// Step 1's unweighted loss components (mean over the ensemble's members).
    pub first_step_components: BTreeMap<String, f32>,
    /// The 1-minute load average before and after the epoch (`/proc/loadavg`).
    pub load_average: (Option<f64>, Option<f64>),
}

/// Exports the work of epoch 1 of `config` (its first `limit` records) into `dir`, runs the
/// epoch with the real trainer and returns (and writes) what it measured.
pub fn export_finetune(config: Config, dir: &Path, limit: Option<usize>) -> Result<FinetuneReport> {
    let scratch = Scratch::create()?;
    let config = epoch_config(config, &scratch.path, limit)?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let device = select_device(&config.train.device)?;
    let prepared = prepare(&config, &device, &mut |_| {})?;
    let train = &prepared.train;
    let space = &train.dataset.space;
    let Some(tokens) = &train.features.tokens else {
        bail!("the features have no token states: is text_encoder.finetune_layers > 0?");
    };

    let (_, varmap) =
        build_model(&config, &train.features, space.len(), space.multi_label, &device)?;
    let initial = dir.join("initial.safetensors");
    varmap.save(&initial).with_context(|| format!("writing {}", initial.display()))?;

    let settings = &config.train;
    let order = epoch_order(
        train.dataset.len(),
        settings.batch_size,
        settings.seed,
        1,
        Some(&tokens.lengths()),
    );
    let targets = Targets::of(&train.dataset);
    let mut tensors = HashMap::new();
    for (step, indices) in order.iter().enumerate() {
        add_batch(
            &mut tensors,
            step,
            &batch(&train.features, &targets, indices, &device)?,
            indices,
        )?;
    }
    let batches = dir.join("batches.safetensors");
    candle_core::safetensors::save(&tensors, &batches)
        .with_context(|| format!("writing {}", batches.display()))?;
    drop(tensors);

    let files = resolve_model(&config.text_encoder.model, true)?;
    let encoder_config: serde_json::Value = crate::runs::read_json(&files.config)?;
    let total_layers = read_config(&files.config)?.num_layers();
    let finetune = config.text_encoder.finetune_layers;
    let steps = order.len();
    // The trainer's optimizer constants (its groups differ only in rate and weight decay)
    // and its schedule.
    let adam = candle_nn::ParamsAdamW::default();
    let schedule = LrSchedule::new(settings, steps * settings.epochs);
    write_json(
        &dir.join("hyperparams.json"),
        &Hyperparams {
            config: config.clone(),
            steps,
            total_steps: steps * settings.epochs,
            warmup_steps: schedule.warmup_steps(),
            adam_beta1: adam.beta1,
            adam_beta2: adam.beta2,
            adam_eps: adam.eps,
            num_labels: space.len(),
            multi_label: space.multi_label,
            finetuned_layers: (total_layers.saturating_sub(finetune)..total_layers).collect(),
            encoder_config,
            train_samples: train.dataset.len(),
        },
    )?;
    drop(prepared);

    let before = load_average();
    let timing = time_run(&config)?;
    let after = load_average();
    if let Some(message) = timing.failure {
        bail!("the timed fine-tuning epoch failed: {message}");
    }
    if timing.steps.len() != steps {
        bail!("the trainer ran {} steps, the exported epoch has {steps}", timing.steps.len());
    }
    let mismatch = order.iter().zip(&timing.steps).find(|(b, s)| b.len() != s.samples);
    if let Some((exported, step)) = mismatch {
        bail!(
            "step {}: the trainer's batch has {} samples, the exported one {}",
            step.global_step,
            step.samples,
            exported.len()
        );
    }
    // Each step's time is its batch size over its rate.
    let epoch_step_seconds =
        timing.steps.iter().map(|s| s.samples as f64 / s.samples_per_second.max(1e-9)).sum();
    let report = FinetuneReport {
        dir: dir.to_path_buf(),
        train_samples: timing.train_samples,
        steps,
        threads: candle_core::utils::get_num_threads(),
        epoch_step_seconds,
        epoch_cpu_seconds: timing.cpu_to_last_step,
        mean_loss: f64::from(timing.train_losses.first().copied().unwrap_or(f32::NAN)),
        last_step_loss: timing.steps.last().map_or(f32::NAN, |s| s.loss),
        step_losses: timing.steps.iter().map(|s| s.loss).collect(),
        first_step_components: timing.steps[0].components.clone(),
        load_average: (before, after),
    };
    write_json(&dir.join("memescope.json"), &report)?;
    Ok(report)
}

/// `config` as the exported epoch runs: one epoch, dropout 0, no images, runs in scratch.
fn epoch_config(config: Config, scratch: &Path, limit: Option<usize>) -> Result<Config> {
    let mut config = config.absolutized()?;
    if config.text_encoder.finetune_layers == 0 {
        bail!(
            "--finetune-export needs a config that fine-tunes text layers \
             (text_encoder.finetune_layers > 0)"
        );
    }
    if let Some(limit) = limit {
        config.data.train = first_records(&config.data.train, limit, scratch)?;
    }
    config.data.images = None;
    config.model.dropout = 0.0;
    config.train.epochs = 1;
    config.train.patience = 0;
    config.paths.runs = scratch.join("runs");
    Ok(config)
}

/// Adds one trainer batch's tensors under the names of [`FinetuneBatchTensors`].
fn add_batch(
    tensors: &mut HashMap<String, Tensor>,
    step: usize,
    batch: &crate::model::Batch,
    indices: &[usize],
) -> Result<()> {
    let tokens = batch.text_tokens.as_ref().context("the batch has no token states")?;
    tensors.insert(FinetuneBatchTensors::states(step), tokens.states.to_device(&Device::Cpu)?);
    tensors.insert(FinetuneBatchTensors::mask(step), tokens.mask.to_device(&Device::Cpu)?);
    if let Some(lexical) = &batch.lexical {
        let dense = lexical.to_device(&Device::Cpu)?.to_vec2::<f32>()?;
        let (mut index, mut value) = (Vec::new(), Vec::new());
        for (row, values) in dense.iter().enumerate() {
            for (bucket, &v) in values.iter().enumerate().filter(|(_, v)| **v != 0.0) {
                index.extend([row as u32, bucket as u32]);
                value.push(v);
            }
        }
        let nonzeros = value.len();
        tensors.insert(
            FinetuneBatchTensors::lexical_index(step),
            Tensor::from_vec(index, (nonzeros, 2), &Device::Cpu)?,
        );
        tensors.insert(
            FinetuneBatchTensors::lexical_value(step),
            Tensor::from_vec(value, nonzeros, &Device::Cpu)?,
        );
    }
    let targets = batch.targets.as_ref().context("the batch has no targets")?;
    tensors.insert(FinetuneBatchTensors::targets(step), targets.to_device(&Device::Cpu)?);
    let samples: Vec<u32> = indices.iter().map(|&i| i as u32).collect();
    tensors.insert(
        FinetuneBatchTensors::samples(step),
        Tensor::from_vec(samples, indices.len(), &Device::Cpu)?,
    );
    Ok(())
}

/// The report as a short table.
pub fn render_finetune(report: &FinetuneReport) -> String {
    let load = |l: Option<f64>| l.map_or("?".to_string(), |l| format!("{l:.2}"));
    format!(
        "exported to        {}\n\
         train samples      {} in {} steps\n\
         threads            {}\n\
         epoch (steps only) {:.2} s, {:.2} CPU s\n\
         mean epoch loss    {:.6}\n\
         last step loss     {:.6}\n\
         load average       {} before, {} after\n",
        report.dir.display(),
        report.train_samples,
        report.steps,
        report.threads,
        report.epoch_step_seconds,
        report.epoch_cpu_seconds,
        report.mean_loss,
        report.last_step_loss,
        load(report.load_average.0),
        load(report.load_average.1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::DType;

    use crate::features::TokenBatch;
    use crate::model::Batch;

    /// A config that fine-tunes the top layer of a tiny BERT, with an ensemble of two and
    /// the lexical expert, on 40 generated records; dropout and epochs that the export must
    /// override.
    fn tiny_config(dir: &Path) -> Result<Config> {
        let bert = dir.join("tiny-bert");
        crate::testing::write_tiny_bert(&bert)?;
        let records = dir.join("records.json");
        super::super::write_axiom_records(&records, 60, 3)?;
        Config::from_toml_str(&format!(
            "[data]\nformat = \"axiom\"\ntrain = \"{}\"\n\
             [text_encoder]\nmodel = \"{}\"\nmax_length = 24\nfinetune_layers = 1\n\
             layers = 2\npooling = \"mean\"\n\
             [model]\nfusion_dim = 16\nheads = 2\nexperts = 2\nensemble = 2\ndropout = 0.3\n\
             lexical_buckets = 64\n\
             [ablation]\nlexical = true\n\
             [train]\nepochs = 4\nbatch_size = 8\nlexical_lr = 3e-2\n\
             [paths]\ncache = \"{}\"\nruns = \"{}\"\n",
            records.display(),
            bert.display(),
            dir.join("cache").display(),
            dir.join("unused-runs").display(),
        ))
    }

    fn u32s(tensor: &Tensor) -> Result<Vec<u32>> {
        Ok(tensor.flatten_all()?.to_vec1::<u32>()?)
    }

    /// The export holds exactly the trainer's first epoch: the initial weights with the
    /// pretrained top layer, every training sample once in the trainer's length-bucketed
    /// order with consistent padding, and settings with dropout 0 over one epoch; the
    /// exported weights on the exported first batch give the loss the trainer's first step
    /// reported.
    #[test]
    fn export_holds_the_trainers_first_epoch() -> Result<()> {
        let tmp = tempfile::tempdir()?;
        let config = tiny_config(tmp.path())?;
        let out = tmp.path().join("export");
        let report = export_finetune(config.clone(), &out, Some(40))?;

        // 40 records, 1/8 kept for validation: 35 training samples in batches of 8.
        assert_eq!((report.train_samples, report.steps), (35, 5));
        assert_eq!(report.step_losses.len(), 5);
        assert!(report.step_losses.iter().all(|l| l.is_finite() && *l > 0.0));
        assert_eq!(report.last_step_loss, report.step_losses[4]);
        assert!(report.epoch_step_seconds > 0.0);
        for part in ["classification", "contrastive_text_fused", "load_balance"] {
            assert!(report.first_step_components.contains_key(part), "{part}");
        }

        let hp: serde_json::Value = crate::runs::read_json(&out.join("hyperparams.json"))?;
        assert_eq!(hp["config"]["model"]["dropout"], 0.0);
        assert_eq!(hp["config"]["train"]["epochs"], 1);
        assert_eq!((hp["steps"].as_u64(), hp["total_steps"].as_u64()), (Some(5), Some(5)));
        assert_eq!(hp["warmup_steps"], 1, "round(0.1 * 5)");
        assert_eq!(hp["finetuned_layers"], serde_json::json!([1]));
        assert_eq!(hp["encoder_config"]["hidden_size"], 32);

        // The fine-tuned layer starts as the checkpoint's top layer.
        let initial =
            candle_core::safetensors::load(out.join("initial.safetensors"), &Device::Cpu)?;
        let checkpoint = candle_core::safetensors::load(
            tmp.path().join("tiny-bert/model.safetensors"),
            &Device::Cpu,
        )?;
        let name = "attention.self.query.weight";
        let pretrained = checkpoint
            .iter()
            .find(|(key, _)| key.ends_with(&format!("layer.1.{name}")))
            .map(|(_, t)| t.clone())
            .context("the tiny BERT has a layer 1")?;
        let exported = &initial[&format!("text_top.0.{name}")];
        assert_eq!(exported.to_vec2::<f32>()?, pretrained.to_vec2::<f32>()?);
        assert!(initial.contains_key("member1.lexical.weight"), "the second member's weights");

        // Every training sample once, padded to its batch's longest text, zero past its end.
        let batches =
            candle_core::safetensors::load(out.join("batches.safetensors"), &Device::Cpu)?;
        let (mut order, mut lengths) = (Vec::new(), vec![0usize; 35]);
        for step in 0..5 {
            let samples = u32s(&batches[&FinetuneBatchTensors::samples(step)])?;
            let states = &batches[&FinetuneBatchTensors::states(step)];
            let mask = batches[&FinetuneBatchTensors::mask(step)].to_vec2::<u32>()?;
            let (size, seq, hidden) = states.dims3()?;
            assert_eq!((size, hidden, mask.len()), (samples.len(), 32, size));
            assert_eq!(mask.iter().map(|row| row.iter().sum::<u32>()).max(), Some(seq as u32));
            for (row, &sample) in mask.iter().zip(&samples) {
                let len = row.iter().sum::<u32>() as usize;
                assert!(row[..len].iter().all(|&m| m == 1), "real tokens first");
                lengths[sample as usize] = len;
            }
            let masked = states.broadcast_mul(
                &batches[&FinetuneBatchTensors::mask(step)].to_dtype(DType::F32)?.unsqueeze(2)?,
            )?;
            assert_eq!((states - masked)?.abs()?.sum_all()?.to_scalar::<f32>()?, 0.0, "padding");
            let targets = u32s(&batches[&FinetuneBatchTensors::targets(step)])?;
            assert_eq!(targets.len(), size);
            let index = batches[&FinetuneBatchTensors::lexical_index(step)].to_vec2::<u32>()?;
            assert!(!index.is_empty());
            assert!(index.iter().all(|i| (i[0] as usize) < size && i[1] < 64));
            order.push(samples.iter().map(|&s| s as usize).collect::<Vec<_>>());
        }
        let mut all: Vec<usize> = order.concat();
        all.sort();
        assert_eq!(all, (0..35).collect::<Vec<_>>());
        assert_eq!(order, epoch_order(35, 8, config.train.seed, 1, Some(&lengths)));

        // The exported weights on the exported first batch: the trainer's first loss.
        let epoch = epoch_config(config, tmp.path(), Some(40))?;
        let prepared = prepare(&epoch, &Device::Cpu, &mut |_| {})?;
        let space = &prepared.train.dataset.space;
        let (model, mut varmap) =
            build_model(&epoch, &prepared.train.features, space.len(), false, &Device::Cpu)?;
        varmap.load(out.join("initial.safetensors"))?;
        let first = Batch {
            text: None,
            text_tokens: Some(TokenBatch {
                states: batches[&FinetuneBatchTensors::states(0)].clone(),
                mask: batches[&FinetuneBatchTensors::mask(0)].clone(),
            }),
            image: None,
            image_mask: None,
            lexical: Some(dense_lexical(&batches, 0, 64)?),
            targets: Some(batches[&FinetuneBatchTensors::targets(0)].clone()),
        };
        let loss = model.loss(&model.forward(&first, true)?, &first)?.total.to_scalar::<f32>()?;
        assert!(
            (loss - report.step_losses[0]).abs() < 1e-6,
            "exported work gives {loss}, the trainer's first step {}",
            report.step_losses[0]
        );
        Ok(())
    }

    /// The dense `(batch, buckets)` lexical features of an exported step.
    fn dense_lexical(
        batches: &HashMap<String, Tensor>,
        step: usize,
        buckets: usize,
    ) -> Result<Tensor> {
        let size = batches[&FinetuneBatchTensors::samples(step)].dim(0)?;
        let index = batches[&FinetuneBatchTensors::lexical_index(step)].to_vec2::<u32>()?;
        let value = batches[&FinetuneBatchTensors::lexical_value(step)].to_vec1::<f32>()?;
        let mut dense = vec![0f32; size * buckets];
        for (i, v) in index.iter().zip(value) {
            dense[i[0] as usize * buckets + i[1] as usize] = v;
        }
        Ok(Tensor::from_vec(dense, (size, buckets), &Device::Cpu)?)
    }

    #[test]
    fn a_config_without_fine_tuned_layers_is_refused() -> Result<()> {
        let tmp = tempfile::tempdir()?;
        let mut config = tiny_config(tmp.path())?;
        config.text_encoder.finetune_layers = 0;
        let error = export_finetune(config, &tmp.path().join("out"), None).unwrap_err();
        assert!(format!("{error:#}").contains("finetune_layers > 0"), "{error:#}");
        Ok(())
    }
}
