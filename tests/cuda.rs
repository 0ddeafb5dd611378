//! The CUDA build on a real GPU: device selection, training with gradients flowing on the
//! GPU, and CPU/GPU agreement of the fusion model's and the frozen text encoder's forward
//! passes. Compiled only with `--features cuda`; needs an NVIDIA GPU to run
//! (scripts/gpu-check.sh runs it; scripts/check-cuda.sh only builds it).

#![cfg(feature = "cuda")]

mod common;

use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use memescope::config::{Ablation, Config, ModelConfig, Pooling, Precision};
use memescope::encoders::{resolve_model, TextEncoder, TextEncoderOptions};
use memescope::events::{TrainEvent, VecSink};
use memescope::model::{seeded_var_builder, Batch, FeatureDims, FusionModel};
use memescope::train::{self, select_device, StopFlag};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// CPU and GPU compute the same f32 functions with different summation orders (cuBLAS
/// tiles, block-wise reductions), never bit-identical; at these sizes the differences are
/// ~1e-6 of the values. 1e-4 relative to the largest magnitude leaves room for that while
/// any real discrepancy (a wrong kernel, a missed mask, a dropped bias: effects of order
/// 1e-2 and up) fails. cuBLAS's reduced-precision f32 (TF32) mode, off by default in
/// candle, would exceed it, and is meant to.
const RELATIVE_TOLERANCE: f32 = 1e-4;

fn gpu() -> Device {
    select_device("cuda:0").expect("this test needs an NVIDIA GPU (cuda:0)")
}

fn assert_close(what: &str, cpu: &Tensor, gpu: &Tensor) {
    assert!(gpu.device().is_cuda(), "{what}: the GPU result is on {:?}", gpu.device());
    assert_eq!(cpu.dims(), gpu.dims(), "{what}: shapes differ");
    let gpu = gpu.to_device(&Device::Cpu).unwrap();
    let scale = cpu.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap().max(1.0);
    let diff = (cpu - &gpu).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
    assert!(diff.is_finite(), "{what}: non-finite values");
    assert!(
        diff <= RELATIVE_TOLERANCE * scale,
        "{what}: CPU and GPU differ by {diff:e} (largest magnitude {scale}, tolerance {:e})",
        RELATIVE_TOLERANCE * scale
    );
    eprintln!("{what}: max |CPU - GPU| = {diff:e} (largest magnitude {scale})");
}

#[test]
fn device_names_select_the_gpu() {
    assert!(select_device("cuda").unwrap().is_cuda());
    assert!(select_device("cuda:0").unwrap().is_cuda());
    // With a GPU present, `auto` must take it rather than fall back to the CPU.
    assert!(select_device("auto").unwrap().is_cuda(), "auto picked the CPU");
    assert!(select_device("cpu").unwrap().is_cpu());
    // An ordinal past the installed GPUs is an error naming the device, not a CPU run.
    let error = select_device("cuda:4096").unwrap_err();
    assert!(format!("{error:#}").contains("cuda:4096"), "{error:#}");

    // The config key that the trainer reads.
    let config = Config::from_toml_str(
        "[data]\nformat = \"axiom\"\ntrain = \"train.json\"\n[text_encoder]\nmodel = \"unused\"\n\
         [train]\ndevice = \"cuda:0\"\n",
    )
    .unwrap();
    assert!(select_device(&config.train.device).unwrap().is_cuda());
}

const TEXT: (usize, usize) = (3, 16);
const IMAGE: (usize, usize) = (2, 12);
const LABELS: usize = 6;

/// Seeded synthetic features and labels on `device` (the same values for any device).
fn batch(rows: usize, seed: u64, device: &Device) -> Batch {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut values =
        |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-2.0..2.0)).collect() };
    let text = values(rows * TEXT.0 * TEXT.1);
    let image = values(rows * IMAGE.0 * IMAGE.1);
    // Every third sample has no image, so the masking path runs too.
    let mask: Vec<f32> = (0..rows).map(|i| if i % 3 == 2 { 0.0 } else { 1.0 }).collect();
    let targets: Vec<u32> = (0..rows).map(|i| (i % LABELS) as u32).collect();
    Batch {
        text: Some(Tensor::from_vec(text, (rows, TEXT.0, TEXT.1), device).unwrap()),
        text_tokens: None,
        image: Some(Tensor::from_vec(image, (rows, IMAGE.0, IMAGE.1), device).unwrap()),
        image_mask: Some(Tensor::from_vec(mask, rows, device).unwrap()),
        lexical: None,
        targets: Some(Tensor::from_vec(targets, rows, device).unwrap()),
    }
}

fn model(device: &Device) -> (VarMap, FusionModel) {
    let config = ModelConfig {
        fusion_dim: 32,
        heads: 4,
        experts: 3,
        dropout: 0.1,
        classifier_layers: 1,
        ..ModelConfig::default()
    };
    let dims = FeatureDims { text: Some(TEXT), image: Some(IMAGE) };
    let varmap = VarMap::new();
    // Seeded initialisation draws on the CPU and copies: the same weights on any device.
    let vb = seeded_var_builder(&varmap, 9, device);
    let model = FusionModel::new(vb, &config, &Ablation::default(), dims, LABELS, false, 9)
        .expect("the model builds");
    (varmap, model)
}

#[test]
fn fusion_forward_agrees_between_cpu_and_gpu() {
    let device = gpu();
    let (_cpu_vars, cpu_model) = model(&Device::Cpu);
    let (gpu_vars, gpu_model) = model(&device);
    for (name, var) in gpu_vars.data().lock().unwrap().iter() {
        assert!(var.device().is_cuda(), "variable {name} is not on the GPU");
    }
    let cpu = cpu_model.forward(&batch(24, 4, &Device::Cpu), false).unwrap();
    let gpu = gpu_model.forward(&batch(24, 4, &device), false).unwrap();
    assert_close("fusion logits", &cpu.logits, &gpu.logits);
    assert_close("fused embedding", &cpu.fused_embedding, &gpu.fused_embedding);
    let (cpu_gates, gpu_gates) = (cpu.gates.unwrap(), gpu.gates.unwrap());
    assert_close("expert gates", &cpu_gates, &gpu_gates);
}

/// One forward, loss and backward on the GPU: every variable gets a finite, non-zero
/// gradient, on the GPU; then a few optimiser steps lower the loss.
#[test]
fn gradients_flow_and_the_loss_falls_on_the_gpu() {
    use candle_nn::{AdamW, Optimizer, ParamsAdamW};

    let device = gpu();
    let (varmap, model) = model(&device);
    let batch = batch(24, 5, &device);
    let output = model.forward(&batch, true).unwrap();
    let loss = model.loss(&output, &batch).unwrap();
    let grads = loss.total.backward().unwrap();
    let mut missing = Vec::new();
    for (name, var) in varmap.data().lock().unwrap().iter() {
        match grads.get(var.as_tensor()) {
            Some(grad) => {
                assert!(grad.device().is_cuda(), "gradient of {name} is not on the GPU");
                let norm = grad.sqr().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
                if !(norm > 0.0 && norm.is_finite()) {
                    missing.push(format!("{name} (|g|² = {norm})"));
                }
            }
            None => missing.push(format!("{name} (none)")),
        }
    }
    assert!(missing.is_empty(), "variables without a gradient on the GPU: {missing:?}");

    let mut optimiser =
        AdamW::new(varmap.all_vars(), ParamsAdamW { lr: 3e-3, ..Default::default() }).unwrap();
    let loss_now = |model: &FusionModel| {
        let output = model.forward(&batch, false).unwrap();
        model.loss(&output, &batch).unwrap().total.to_scalar::<f32>().unwrap()
    };
    let before = loss_now(&model);
    for _ in 0..30 {
        let output = model.forward(&batch, true).unwrap();
        optimiser.backward_step(&model.loss(&output, &batch).unwrap().total).unwrap();
    }
    let after = loss_now(&model);
    assert!(after < 0.5 * before, "30 steps on one batch: loss {before} -> {after}");
}

/// The real trainer, end to end on the GPU (`train.device = "cuda:0"`): synthetic memes,
/// tiny encoders, a run that learns, reports the GPU as its device and the GPU's memory in
/// use with every step.
#[test]
fn a_tiny_training_run_learns_on_the_gpu() {
    tiny_gpu_run(Precision::F32);
}

/// The same run in mixed precision (`train.precision = "bf16"`): bfloat16 activations, f32
/// weights, and the same bar to clear.
#[test]
fn a_tiny_mixed_precision_run_learns_on_the_gpu() {
    tiny_gpu_run(Precision::Bf16);
}

fn tiny_gpu_run(precision: Precision) {
    // The same data and settings as tests/train_e2e.rs's CPU run, which reaches 0.9 too.
    let (_dir, _data, mut config) = common::synthetic_run("axiom", 20, 11);
    config.train.device = "cuda:0".into();
    config.train.precision = precision;

    let mut sink = VecSink::default();
    let summary = train::run(config, &mut sink, &StopFlag::default()).unwrap();
    let info = sink.0.iter().find_map(|event| match event {
        TrainEvent::RunStarted(info) => Some(info.clone()),
        _ => None,
    });
    let info = info.expect("the run started");
    assert_eq!(info.device, "cuda", "the run did not train on the GPU");
    assert_eq!(info.precision, precision);
    let steps: Vec<_> = sink
        .0
        .iter()
        .filter_map(|event| match event {
            TrainEvent::Step(step) => Some(step.device_memory),
            _ => None,
        })
        .collect();
    assert!(!steps.is_empty());
    for memory in steps {
        let memory = memory.expect("a CUDA step reports the GPU's memory");
        assert!(0 < memory.used_bytes && memory.used_bytes <= memory.total_bytes, "{memory:?}");
    }
    assert!(
        summary.macro_f1 >= 0.9,
        "macro-F1 {:.3} on a learnable synthetic set, trained on the GPU in {}",
        summary.macro_f1,
        precision.name()
    );
}

const TEXTS: [&str; 4] = [
    "when the anxiety hits at night and you just can't stop thinking about everything",
    "",
    "me",
    "panic!!! why is nothing ok",
];

/// The frozen text encoder's features (every hidden state, mean-pooled) on CPU and GPU.
fn assert_text_encoder_agrees(model: &str) {
    let files = resolve_model(model, true).unwrap();
    let options = |layers| TextEncoderOptions {
        max_length: 128,
        layers,
        pooling: Pooling::Mean,
        batch_size: 2,
    };
    let texts: Vec<String> = TEXTS.iter().map(|t| t.to_string()).collect();
    // The encoder hands its features back on the CPU whatever it ran on (they go to the
    // feature cache), so the two runs are compared as numbers.
    let encode = |device: &Device| {
        let encoder = TextEncoder::load(&files, device, options(3)).unwrap();
        encoder.encode(&texts, &mut |_, _| {}).unwrap()
    };
    let cpu = encode(&Device::Cpu);
    let gpu_features = encode(&gpu()).to_device(&gpu()).unwrap();
    assert_close(&format!("text encoder {model}"), &cpu, &gpu_features);
}

#[test]
fn frozen_text_encoder_agrees_between_cpu_and_gpu() {
    let dir = tempfile::tempdir().unwrap();
    memescope::testing::write_tiny_bert(dir.path()).unwrap();
    assert_text_encoder_agrees(dir.path().to_str().unwrap());
    // The real all-MiniLM-L6-v2 where its weights are at hand: MEMESCOPE_MINILM (set by
    // scripts/gpu-check.sh), else models/ relative to the working directory (the crate root
    // under `cargo test`; the build path does not exist on a GPU machine).
    let minilm = std::path::PathBuf::from(
        std::env::var("MEMESCOPE_MINILM").unwrap_or_else(|_| "models/all-MiniLM-L6-v2".into()),
    );
    if minilm.join("model.safetensors").is_file() {
        assert_text_encoder_agrees(minilm.to_str().unwrap());
    } else {
        eprintln!("{} absent: only the tiny BERT was compared", minilm.display());
    }
}
