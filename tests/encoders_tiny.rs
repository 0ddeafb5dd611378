//! The encoders on tiny random checkpoints, loaded the way real checkpoints are: through
//! `resolve_model` and `TextEncoder::load` / `VisionEncoder::load`.

use std::path::{Path, PathBuf};

use anyhow::Result;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use image::{DynamicImage, Rgb, RgbImage};
use memescope::config::Pooling;
use memescope::encoders::preprocess::preprocess_batch;
use memescope::encoders::text_model::TextModel;
use memescope::encoders::{
    resolve_model, resolve_model_with, HubSettings, TextEncoder, TextEncoderOptions,
    TokenizerFiles, VisionEncoder,
};
use memescope::testing::{
    tiny_bert_tokenizer, tiny_roberta_tokenizer, write_slow_tokenizer, write_tiny_bert,
    write_tiny_clip, write_tiny_mpnet, write_tiny_roberta, TINY_HIDDEN, TINY_IMAGE_SIZE,
    TINY_LAYERS,
};

fn options(layers: usize, pooling: Pooling, batch_size: usize) -> TextEncoderOptions {
    TextEncoderOptions { max_length: 128, layers, pooling, batch_size }
}

fn text_encoder(dir: &Path, options: TextEncoderOptions) -> Result<TextEncoder> {
    let files = resolve_model(dir.to_str().unwrap(), true)?;
    TextEncoder::load(&files, &Device::Cpu, options)
}

fn encode(encoder: &TextEncoder, texts: &[&str]) -> Result<Tensor> {
    let texts: Vec<String> = texts.iter().map(|t| t.to_string()).collect();
    encoder.encode(&texts, &mut |_, _| {})
}

fn max_diff(a: &Tensor, b: &Tensor) -> Result<f32> {
    Ok((a - b)?.abs()?.max_all()?.to_scalar::<f32>()?)
}

fn assert_finite(t: &Tensor) -> Result<()> {
    let values = t.flatten_all()?.to_vec1::<f32>()?;
    assert!(values.iter().all(|v| v.is_finite()), "non-finite features");
    Ok(())
}

const TEXTS: [&str; 5] = [
    "when the anxiety hits at night and you just can't stop thinking about everything you \
     said today, the day before, and the whole year",
    "",
    "me",
    "my brain when i try to sleep",
    "panic!!! why is nothing ok",
];

/// Each text's vectors must not depend on which texts share its batch (padding, order).
fn check_batch_independence(dir: &Path, pooling: Pooling) -> Result<()> {
    let encoder = text_encoder(dir, options(TINY_LAYERS + 1, pooling, 2))?;
    let mut calls = Vec::new();
    let texts: Vec<String> = TEXTS.iter().map(|t| t.to_string()).collect();
    let all = encoder.encode(&texts, &mut |done, total| calls.push((done, total)))?;
    assert_eq!(all.dims(), &[5, TINY_LAYERS + 1, TINY_HIDDEN]);
    assert_finite(&all)?;
    assert_eq!(calls.first(), Some(&(0, 5)));
    assert_eq!(calls.last(), Some(&(5, 5)));
    assert!(calls.windows(2).all(|w| w[0].0 < w[1].0), "progress must advance: {calls:?}");

    for (index, text) in TEXTS.iter().enumerate() {
        let alone = encode(&encoder, &[text])?;
        let in_batch = all.narrow(0, index, 1)?;
        let diff = max_diff(&alone, &in_batch)?;
        assert!(diff < 1e-5, "text {index} differs by {diff} alone vs batched");
    }
    // Distinct texts get distinct vectors (a model ignoring its input would pass the above).
    let first = all.narrow(0, 2, 1)?;
    let second = all.narrow(0, 3, 1)?;
    assert!(max_diff(&first, &second)? > 1e-3);
    Ok(())
}

#[test]
fn tiny_bert_features_are_independent_of_batch_composition() -> Result<()> {
    let dir = tempfile::tempdir()?;
    write_tiny_bert(dir.path())?;
    check_batch_independence(dir.path(), Pooling::Mean)?;
    check_batch_independence(dir.path(), Pooling::Cls)
}

#[test]
fn tiny_roberta_features_are_independent_of_batch_composition() -> Result<()> {
    let dir = tempfile::tempdir()?;
    write_tiny_roberta(dir.path())?;
    check_batch_independence(dir.path(), Pooling::Mean)?;
    check_batch_independence(dir.path(), Pooling::Cls)
}

/// MPNet's relative-position bias depends only on distances between positions, and padding
/// sits at the end, so batching must not change a text's vectors here either.
#[test]
fn tiny_mpnet_features_are_independent_of_batch_composition() -> Result<()> {
    let dir = tempfile::tempdir()?;
    write_tiny_mpnet(dir.path())?;
    check_batch_independence(dir.path(), Pooling::Mean)?;
    check_batch_independence(dir.path(), Pooling::Cls)
}

#[test]
fn text_encoder_exposes_the_requested_top_layers_in_input_order() -> Result<()> {
    let dir = tempfile::tempdir()?;
    write_tiny_bert(dir.path())?;
    let all = encode(&text_encoder(dir.path(), options(3, Pooling::Mean, 4))?, &TEXTS)?;
    let top = encode(&text_encoder(dir.path(), options(1, Pooling::Mean, 4))?, &TEXTS)?;
    assert_eq!(top.dims(), &[5, 1, TINY_HIDDEN]);
    // The last exposed layer is the top one whatever the number of layers exposed.
    assert!(max_diff(&all.narrow(1, 2, 1)?, &top)? < 1e-6);
    let swapped =
        encode(&text_encoder(dir.path(), options(1, Pooling::Mean, 4))?, &[TEXTS[3], TEXTS[2]])?;
    assert!(max_diff(&swapped.narrow(0, 0, 1)?, &top.narrow(0, 3, 1)?)? < 1e-5);
    assert!(max_diff(&swapped.narrow(0, 1, 1)?, &top.narrow(0, 2, 1)?)? < 1e-5);
    let none = encode(&text_encoder(dir.path(), options(2, Pooling::Cls, 4))?, &[])?;
    assert_eq!(none.dims(), &[0, 2, TINY_HIDDEN]);
    Ok(())
}

#[test]
fn truncation_counts_special_tokens() -> Result<()> {
    let dir = tempfile::tempdir()?;
    write_tiny_bert(dir.path())?;
    let short = TextEncoderOptions { max_length: 6, ..options(1, Pooling::Mean, 4) };
    let encoder = text_encoder(dir.path(), short)?;
    // [CLS] the cat and the [SEP]: 6 tokens, so everything after the fourth word is cut.
    let cut = encode(&encoder, &["the cat and the dog and me", "the cat and the"])?;
    assert!(max_diff(&cut.narrow(0, 0, 1)?, &cut.narrow(0, 1, 1)?)? < 1e-6);
    let full = encode(
        &text_encoder(dir.path(), options(1, Pooling::Mean, 4))?,
        &["the cat and the dog and me"],
    )?;
    assert!(max_diff(&full, &cut.narrow(0, 0, 1)?)? > 1e-3);
    Ok(())
}

#[test]
fn bad_options_are_refused_with_the_limits() -> Result<()> {
    let dir = tempfile::tempdir()?;
    write_tiny_roberta(dir.path())?;
    let err = text_encoder(dir.path(), options(4, Pooling::Mean, 4)).err().unwrap().to_string();
    assert!(err.contains("text_encoder.layers = 4") && err.contains("1..=3"), "{err}");
    let long = TextEncoderOptions { max_length: 200, ..options(1, Pooling::Mean, 4) };
    let err = text_encoder(dir.path(), long).err().unwrap().to_string();
    // 130 positions, padding index 1: inputs of at most 128 tokens.
    assert!(err.contains("max_length = 200") && err.contains("2..=128"), "{err}");
    Ok(())
}

/// Our BERT against candle_transformers' independent implementation, on the same tiny
/// weights (whose norm scales and biases are not the identity), with padding.
#[test]
fn tiny_bert_matches_candle_transformers() -> Result<()> {
    let dir = tempfile::tempdir()?;
    write_tiny_bert(dir.path())?;
    let device = Device::Cpu;
    let ours = TextModel::from_files(
        &dir.path().join("config.json"),
        &dir.path().join("model.safetensors"),
        &device,
    )?;
    let config: candle_transformers::models::bert::Config =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("config.json"))?)?;
    let weights = [dir.path().join("model.safetensors")];
    let vb = unsafe { VarBuilder::from_mmaped_safetensors(&weights, DType::F32, &device)? };
    let theirs = candle_transformers::models::bert::BertModel::load(vb, &config)?;
    let ids = Tensor::new(&[[2u32, 40, 50, 60, 70, 3], [2, 45, 3, 0, 0, 0]], &device)?;
    let types = ids.zeros_like()?;
    let mask = Tensor::new(&[[1u32, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]], &device)?;
    let expected = theirs.forward(&ids, &types, Some(&mask))?;
    let got = ours.hidden_states(&ids, Some(&types), &mask)?.pop().unwrap();
    // Padding positions are garbage in both; compare the real tokens.
    let diff_full = max_diff(&got.narrow(0, 0, 1)?, &expected.narrow(0, 0, 1)?)?;
    let diff_short = max_diff(&got.i_real(1, 3)?, &expected.i_real(1, 3)?)?;
    assert!(diff_full < 1e-4 && diff_short < 1e-4, "{diff_full} {diff_short}");
    Ok(())
}

trait RealTokens {
    /// Row `row`'s first `len` token vectors.
    fn i_real(&self, row: usize, len: usize) -> Result<Tensor>;
}

impl RealTokens for Tensor {
    fn i_real(&self, row: usize, len: usize) -> Result<Tensor> {
        Ok(self.narrow(0, row, 1)?.narrow(1, 0, len)?)
    }
}

fn images() -> Vec<DynamicImage> {
    let gradient = RgbImage::from_fn(64, 40, |x, y| Rgb([(x * 4) as u8, (y * 6) as u8, 90]));
    let checks = RgbImage::from_fn(32, 32, |x, y| {
        if (x / 4 + y / 4) % 2 == 0 {
            Rgb([250, 250, 250])
        } else {
            Rgb([10, 20, 30])
        }
    });
    let tall = RgbImage::from_fn(20, 90, |_, y| Rgb([200, (y * 2) as u8, 40]));
    vec![gradient.into(), checks.into(), tall.into()]
}

#[test]
fn tiny_clip_encodes_cls_of_top_layers_independently_of_the_batch() -> Result<()> {
    let dir = tempfile::tempdir()?;
    write_tiny_clip(dir.path())?;
    let files = resolve_model(dir.path().to_str().unwrap(), false)?;
    assert_eq!(files.tokenizer, None);
    let encoder = VisionEncoder::load(&files, &Device::Cpu, 2, 2)?;
    assert_eq!((encoder.hidden_size(), encoder.image_size()), (TINY_HIDDEN, TINY_IMAGE_SIZE));
    let images = images();
    let mut last = (0, 0);
    let all = encoder.encode(&images, &mut |done, total| last = (done, total))?;
    assert_eq!(all.dims(), &[3, 2, TINY_HIDDEN]);
    assert_eq!(last, (3, 3));
    assert_finite(&all)?;
    for (index, image) in images.iter().enumerate() {
        let alone = encoder.encode(std::slice::from_ref(image), &mut |_, _| {})?;
        let diff = max_diff(&alone, &all.narrow(0, index, 1)?)?;
        assert!(diff < 1e-5, "image {index} differs by {diff} alone vs batched");
    }
    assert!(max_diff(&all.narrow(0, 0, 1)?, &all.narrow(0, 1, 1)?)? > 1e-3);

    // The vectors are the [CLS] rows of the top hidden states; the patches are the rest.
    let refs: Vec<&DynamicImage> = images.iter().collect();
    let pixels = preprocess_batch(&refs, TINY_IMAGE_SIZE as u32, &Device::Cpu)?;
    let states = encoder.model().hidden_states(&pixels)?;
    assert_eq!(states.len(), TINY_LAYERS + 1);
    let top_cls = states[TINY_LAYERS].narrow(1, 0, 1)?;
    assert!(max_diff(&all.narrow(1, 1, 1)?, &top_cls)? < 1e-6);
    let patches = encoder.encode_patches(&images, &mut |_, _| {})?;
    assert_eq!(patches.dims(), &[3, 16, TINY_HIDDEN]);
    assert!(max_diff(&patches, &states[TINY_LAYERS].narrow(1, 1, 16)?)? < 1e-6);

    let err = VisionEncoder::load(&files, &Device::Cpu, 4, 2).err().unwrap().to_string();
    assert!(err.contains("vision_encoder.layers = 4"), "{err}");
    Ok(())
}

/// Our CLIP tower against candle_transformers' independent implementation.
#[test]
fn tiny_clip_matches_candle_transformers() -> Result<()> {
    use candle_transformers::models::clip::text_model::Activation;
    use candle_transformers::models::clip::vision_model::{
        ClipVisionConfig, ClipVisionTransformer,
    };
    let dir = tempfile::tempdir()?;
    write_tiny_clip(dir.path())?;
    let files = resolve_model(dir.path().to_str().unwrap(), false)?;
    let ours = VisionEncoder::load(&files, &Device::Cpu, 1, 4)?;
    let config = ClipVisionConfig {
        embed_dim: TINY_HIDDEN,
        activation: Activation::QuickGelu,
        intermediate_size: 64,
        num_hidden_layers: TINY_LAYERS,
        num_attention_heads: 4,
        projection_dim: 16,
        num_channels: 3,
        image_size: TINY_IMAGE_SIZE,
        patch_size: 8,
    };
    let weights = [files.weights.clone()];
    let vb = unsafe { VarBuilder::from_mmaped_safetensors(&weights, DType::F32, &Device::Cpu)? };
    let theirs = ClipVisionTransformer::new(vb.pp("vision_model"), &config)?;
    let images = images();
    let refs: Vec<&DynamicImage> = images.iter().collect();
    let pixels = preprocess_batch(&refs, TINY_IMAGE_SIZE as u32, &Device::Cpu)?;
    // theirs: each layer's output, then the pooled output; ours: embeddings, each layer.
    let expected = theirs.output_hidden_states(&pixels)?;
    let got = ours.model().hidden_states(&pixels)?;
    for layer in 0..TINY_LAYERS {
        let diff = max_diff(&got[layer + 1], &expected[layer])?;
        assert!(diff < 1e-4, "layer {layer} differs by {diff}");
    }
    let pooled = ours.model().pooled(&got[TINY_LAYERS])?;
    assert!(max_diff(&pooled, &expected[TINY_LAYERS])? < 1e-4);
    Ok(())
}

#[test]
fn resolution_errors_say_what_to_do() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let missing: PathBuf = dir.path().join("no-such-model");
    let err = resolve_model(missing.to_str().unwrap(), true).unwrap_err().to_string();
    assert!(err.contains("does not exist") && err.contains("no-such-model"), "{err}");

    let home = dir.path().join("hf-home");
    let hub = HubSettings::from_vars(|name| match name {
        "HF_HUB_OFFLINE" => Some("1".to_string()),
        "HF_HOME" => Some(home.to_string_lossy().into_owned()),
        _ => None,
    });
    let err = resolve_model_with("mental/mental-roberta-base", true, &hub).unwrap_err();
    let err = err.to_string();
    for needle in [
        "HF_HUB_OFFLINE",
        "https://huggingface.co/mental/mental-roberta-base",
        "tokenizer.json",
        "models/mental-roberta-base",
        home.to_str().unwrap(),
    ] {
        assert!(err.contains(needle), "missing `{needle}` in: {err}");
    }
    Ok(())
}

#[test]
fn offline_resolution_finds_cached_files() -> Result<()> {
    // The layout hf-hub writes: refs/main names a snapshot folder holding the files.
    let dir = tempfile::tempdir()?;
    let repo = dir.path().join("hub").join("models--owner--tiny");
    let snapshot = repo.join("snapshots").join("abc123");
    write_tiny_clip(&snapshot)?;
    std::fs::create_dir_all(repo.join("refs"))?;
    std::fs::write(repo.join("refs").join("main"), "abc123")?;
    let home = dir.path().to_string_lossy().into_owned();
    let hub = HubSettings::from_vars(|name| match name {
        "HF_HUB_OFFLINE" => Some("true".to_string()),
        "HF_HOME" => Some(home.clone()),
        _ => None,
    });
    let files = resolve_model_with("owner/tiny", false, &hub)?;
    assert_eq!(files.weights, snapshot.join("model.safetensors"));
    let err = resolve_model_with("owner/tiny", true, &hub).unwrap_err().to_string();
    assert!(err.contains("tokenizer.json") && err.contains("vocab.txt"), "{err}");
    // A snapshot with only the older tokenizer files resolves to them.
    write_slow_tokenizer(&tiny_bert_tokenizer()?, &snapshot)?;
    let files = resolve_model_with("owner/tiny", true, &hub)?;
    let Some(TokenizerFiles::WordPiece { vocab, settings }) = files.tokenizer else {
        panic!("{:?}", files.tokenizer);
    };
    assert_eq!(vocab, snapshot.join("vocab.txt"));
    assert_eq!(settings.special_tokens_map, Some(snapshot.join("special_tokens_map.json")));
    Ok(())
}

/// A RoBERTa checkpoint that ships vocab.json + merges.txt instead of tokenizer.json (as
/// mental/mental-roberta-base does) encodes exactly like the same checkpoint with it.
#[test]
fn a_roberta_folder_without_tokenizer_json_encodes_the_same() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (fast, slow) = (dir.path().join("fast"), dir.path().join("slow"));
    write_tiny_roberta(&fast)?;
    write_tiny_roberta(&slow)?;
    std::fs::remove_file(slow.join("tokenizer.json"))?;
    write_slow_tokenizer(&tiny_roberta_tokenizer()?, &slow)?;
    let files = resolve_model(slow.to_str().unwrap(), true)?;
    assert!(matches!(files.tokenizer, Some(TokenizerFiles::ByteLevelBpe { .. })), "{files:?}");
    let fast_files = resolve_model(fast.to_str().unwrap(), true)?;
    assert_ne!(files.fingerprint()?, fast_files.fingerprint()?, "tokenizer files count");

    let options = options(TINY_LAYERS, Pooling::Mean, 2);
    let ours = TextEncoder::load(&files, &Device::Cpu, options.clone())?;
    let reference = TextEncoder::load(&fast_files, &Device::Cpu, options)?;
    let diff = max_diff(&encode(&ours, &TEXTS)?, &encode(&reference, &TEXTS)?)?;
    assert_eq!(diff, 0.0, "same ids, same model: same features");

    std::fs::remove_file(slow.join("merges.txt"))?;
    let err = resolve_model(slow.to_str().unwrap(), true).unwrap_err().to_string();
    for needle in ["tokenizer.json", "vocab.json + merges.txt", "vocab.txt"] {
        assert!(err.contains(needle), "missing `{needle}` in: {err}");
    }
    Ok(())
}

/// Where the reference test writes its fixtures: `MEMESCOPE_TINY_DIR` keeps them for
/// `scripts/reference_tiny.py`; otherwise a temporary folder.
fn fixture_root() -> Result<(Option<tempfile::TempDir>, PathBuf)> {
    match std::env::var_os("MEMESCOPE_TINY_DIR") {
        Some(dir) => Ok((None, PathBuf::from(dir))),
        None => {
            let temp = tempfile::tempdir()?;
            let path = temp.path().to_path_buf();
            Ok((Some(temp), path))
        }
    }
}

fn assert_close(what: &str, got: &[f32], expected: &[f32], tolerance: f32) {
    for (index, (g, e)) in got.iter().zip(expected).enumerate() {
        assert!((g - e).abs() < tolerance, "{what} coordinate {index}: {g} vs {e}");
    }
}

/// The RoBERTa path (position ids, `roberta.` prefix, byte-level BPE) and the CLIP path
/// (bicubic resize and crop, tower) against Hugging Face transformers, which candle has no
/// equivalent of. Values printed by `scripts/reference_tiny.py` with torch 2.15.0 and
/// transformers 5.24.0 on these seeded fixtures; regenerate them if the fixtures change.
#[test]
fn tiny_roberta_and_clip_match_transformers_reference_values() -> Result<()> {
    let (_keep, root) = fixture_root()?;
    write_tiny_roberta(&root.join("roberta"))?;
    write_tiny_clip(&root.join("clip"))?;

    let texts = ["panic!!! why is nothing ok", "", "the cat and me, anxious at night"];
    let encoder = text_encoder(&root.join("roberta"), options(1, Pooling::Mean, 8))?;
    let got = encode(&encoder, &texts)?.narrow(0, 2, 1)?.flatten_all()?.to_vec1::<f32>()?;
    let roberta = [0.180173f32, -0.858044, 0.554399, 1.161066, 1.012695, -0.819345];
    assert_close("roberta mean", &got, &roberta, 1e-5);

    let image = images().remove(0);
    let pixels = memescope::encoders::preprocess::preprocess(&image, TINY_IMAGE_SIZE as u32);
    let pixel = [0, 1, 2].map(|channel| pixels[channel * 1024 + 5 * 32 + 7]);
    assert_close("pixel (7, 5)", &pixel, &[-0.609790, -1.181802, -0.200414], 1e-5);
    let files = resolve_model(root.join("clip").to_str().unwrap(), false)?;
    let vision = VisionEncoder::load(&files, &Device::Cpu, 1, 1)?;
    let got = vision.encode(&[image], &mut |_, _| {})?.flatten_all()?.to_vec1::<f32>()?;
    assert_close(
        "clip [CLS]",
        &got,
        &[1.542408, -0.550748, 0.394497, -1.985458, -1.40504, -0.912944],
        1e-5,
    );
    Ok(())
}

/// The MPNet path (`mpnet.` prefix, RoBERTa-style positions, no token types, the
/// relative-position bias with its buckets) against Hugging Face transformers' MPNetModel.
/// Values printed by `scripts/reference_tiny.py` with torch 2.15.0 and transformers 5.24.0
/// on this seeded fixture; regenerate them if it changes.
#[test]
fn tiny_mpnet_matches_transformers_reference_values() -> Result<()> {
    let (_keep, root) = fixture_root()?;
    write_tiny_mpnet(&root.join("mpnet"))?;
    let texts = ["panic!!! why is nothing ok", "", "the cat and me, anxious at night"];
    let encoder = text_encoder(&root.join("mpnet"), options(TINY_LAYERS + 1, Pooling::Mean, 8))?;
    let got = encode(&encoder, &texts)?;
    let row = |text: usize, state: usize| -> Result<Vec<f32>> {
        Ok(got.narrow(0, text, 1)?.narrow(1, state, 1)?.flatten_all()?.to_vec1::<f32>()?)
    };
    let embeddings = [0.057832f32, -0.283717, 0.148691, 0.173999, 0.106211, 0.238706];
    let top = [-0.124234f32, -0.251238, 0.299915, -0.028684, -0.190479, 0.103013];
    assert_close("mpnet embeddings mean", &row(2, 0)?, &embeddings, 1e-5);
    assert_close("mpnet top mean", &row(2, TINY_LAYERS)?, &top, 1e-5);
    Ok(())
}
