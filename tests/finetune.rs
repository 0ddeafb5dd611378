//! Partial fine-tuning of the text encoder (`text_encoder.finetune_layers`): the fine-tuned
//! layers start as exactly the frozen encoder, and a run with them learns, saves them and
//! is rebuilt from disk by `eval`.

mod common;

use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use memescope::config::Pooling;
use memescope::encoders::{resolve_model, TextEncoder, TextEncoderOptions};
use memescope::events::{TrainEvent, VecSink};
use memescope::features::TokenStates;
use memescope::model::TextTop;
use memescope::testing::{write_tiny_bert, write_tiny_mpnet, TINY_LAYERS};
use memescope::train::{self, StopFlag};

const TEXTS: [&str; 5] = [
    "hi",
    "when the anxiety hits at three in the morning and you remember everything",
    "me",
    "nobody: my brain at night",
    "ok so this is fine, totally fine",
];

/// Before any step, pooling the fine-tuned layers run on cached token states gives what the
/// frozen encoder gives: same weights, same padding semantics, same pooling. Attention
/// pooling starts as the mean.
#[test]
fn fine_tuned_bert_layers_start_as_the_frozen_encoder() {
    check_fine_tuned_layers_start_as_the_frozen_encoder(write_tiny_bert);
}

/// As for BERT; MPNet's fine-tuned layers also carry their own copy of the relative-position
/// bias, which must start as the checkpoint's.
#[test]
fn fine_tuned_mpnet_layers_start_as_the_frozen_encoder() {
    check_fine_tuned_layers_start_as_the_frozen_encoder(write_tiny_mpnet);
}

fn check_fine_tuned_layers_start_as_the_frozen_encoder(
    write: fn(&std::path::Path) -> anyhow::Result<()>,
) {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path()).unwrap();
    let files = resolve_model(dir.path().to_str().unwrap(), true).unwrap();
    let texts: Vec<String> = TEXTS.iter().map(|t| t.to_string()).collect();
    for (finetune, exposed, pooling, frozen_pooling) in [
        (1, 2, Pooling::Mean, Pooling::Mean),
        (TINY_LAYERS, TINY_LAYERS + 1, Pooling::Mean, Pooling::Mean),
        (1, 1, Pooling::Cls, Pooling::Cls),
        (1, 2, Pooling::Attention, Pooling::Mean),
    ] {
        let options = TextEncoderOptions {
            max_length: 16,
            layers: exposed,
            pooling: frozen_pooling,
            batch_size: 2,
        };
        let encoder = TextEncoder::load(&files, &Device::Cpu, options).unwrap();
        let frozen = encoder.encode(&texts, &mut |_, _| {}).unwrap();

        let (states, lengths) =
            encoder.encode_tokens(&texts, TINY_LAYERS - finetune, &mut |_, _| {}).unwrap();
        assert!(lengths.iter().all(|&len| (3..=16).contains(&len)), "{lengths:?}");
        let tokens = TokenStates::new(states, &lengths).unwrap();
        let varmap = VarMap::new();
        let top =
            TextTop::pretrained(&files, finetune, exposed, pooling, &varmap, &Device::Cpu).unwrap();
        // Batches in another order and grouping than the encoder's length-sorted ones.
        let order = [3, 0, 4, 1, 2];
        let batch = tokens.padded(&order, &Device::Cpu).unwrap();
        let index = Tensor::new(&order.map(|i| i as u32), &Device::Cpu).unwrap();
        let expected = frozen.index_select(&index, 0).unwrap();
        // Training (backward-safe ops) and evaluation (fused ops) compute the same thing.
        for train in [true, false] {
            let pooled = top.forward(&batch, train, candle_core::DType::F32).unwrap();
            let diff = (pooled - &expected).unwrap().abs().unwrap().max_all().unwrap();
            let diff = diff.to_scalar::<f32>().unwrap();
            assert!(diff < 1e-4, "fine-tuning {finetune} ({pooling:?}, train {train}): {diff}");
        }
    }
}

#[test]
fn exposing_more_states_than_fine_tuning_yields_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_bert(dir.path()).unwrap();
    let files = resolve_model(dir.path().to_str().unwrap(), true).unwrap();
    let varmap = VarMap::new();
    let err = TextTop::pretrained(&files, 1, 3, Pooling::Mean, &varmap, &Device::Cpu)
        .err()
        .expect("3 states from 1 layer");
    assert!(err.to_string().contains("text_encoder.layers = 3"), "{err}");
    let err = TextTop::pretrained(&files, TINY_LAYERS + 1, 1, Pooling::Mean, &varmap, &Device::Cpu)
        .err()
        .expect("more layers than the model has");
    assert!(format!("{err:#}").contains("finetune_layers"), "{err:#}");
}

fn text_top_weights(path: &std::path::Path) -> Vec<(String, Vec<f32>)> {
    let tensors = candle_core::safetensors::load(path, &Device::Cpu).unwrap();
    let mut weights: Vec<(String, Vec<f32>)> = tensors
        .into_iter()
        .filter(|(name, _)| name.starts_with("text_top."))
        .map(|(name, t)| (name, t.flatten_all().unwrap().to_vec1().unwrap()))
        .collect();
    weights.sort_by(|a, b| a.0.cmp(&b.0));
    weights
}

#[test]
fn fine_tuning_the_top_layer_learns_and_eval_reproduces_the_report() {
    let (dir, data, mut config) = common::synthetic_run("axiom", 20, 11);
    config.text_encoder.finetune_layers = 1;
    config.train.encoder_lr = 1e-3;

    let mut events = VecSink::default();
    let summary = train::run(config.clone(), &mut events, &StopFlag::default()).unwrap();
    // Each step says how many samples its batch held (length buckets make short batches
    // anywhere in the epoch): an epoch's steps add up to the training set.
    let train_samples = events.0.iter().find_map(|e| match e {
        TrainEvent::RunStarted(info) => Some(info.train_samples),
        _ => None,
    });
    let mut per_epoch = std::collections::BTreeMap::<usize, usize>::new();
    for event in &events.0 {
        if let TrainEvent::Step(step) = event {
            assert!((1..=config.train.batch_size).contains(&step.samples), "{step:?}");
            *per_epoch.entry(step.epoch).or_default() += step.samples;
        }
    }
    assert!(!per_epoch.is_empty());
    for (epoch, samples) in per_epoch {
        assert_eq!(Some(samples), train_samples, "epoch {epoch}");
    }
    assert!(
        summary.macro_f1 >= 0.9,
        "macro-F1 {:.3} on a learnable synthetic set (weighted {:.3})",
        summary.macro_f1,
        summary.weighted_f1
    );

    // The checkpoint holds the fine-tuned layer, and it moved away from the pretrained one.
    let trained = text_top_weights(&summary.run_dir.join("best.safetensors"));
    assert_eq!(trained.len(), 16, "one BERT layer: 8 weight/bias pairs");
    let varmap = VarMap::new();
    let files = resolve_model(&config.text_encoder.model, true).unwrap();
    TextTop::pretrained(&files, 1, 2, Pooling::Mean, &varmap, &Device::Cpu).unwrap();
    let initial = dir.path().join("initial.safetensors");
    varmap.save(&initial).unwrap();
    let initial = text_top_weights(&initial);
    assert_eq!(
        initial.iter().map(|(n, _)| n).collect::<Vec<_>>(),
        trained.iter().map(|(n, _)| n).collect::<Vec<_>>()
    );
    assert_ne!(initial, trained, "the fine-tuned layer never changed");

    // `eval` rebuilds the same model (fine-tuned layer included) and re-encodes the tokens.
    common::assert_eval_reproduces_report(&summary.run_dir, &data);
}
