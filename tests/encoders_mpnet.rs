//! The text encoder on the real all-mpnet-base-v2 (`./scripts/fetch-model.sh mpnet` installs
//! it in `models/`; 420 MB, so not part of the default set-up), against Hugging Face
//! transformers. Skips with a note when the model is absent.

use std::path::PathBuf;

use anyhow::Result;
use candle_core::{Device, Tensor};
use memescope::config::Pooling;
use memescope::encoders::{resolve_model, ModelFiles, TextEncoder, TextEncoderOptions};

fn mpnet() -> Option<ModelFiles> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/all-mpnet-base-v2");
    if !dir.join("model.safetensors").is_file() {
        eprintln!("note: {} absent (run ./scripts/fetch-model.sh mpnet); skipping", dir.display());
        return None;
    }
    Some(resolve_model(dir.to_str().unwrap(), true).expect("MPNet folder resolves"))
}

const SENTENCES: [&str; 3] = [
    "I can't stop worrying about everything, even when nothing is wrong.",
    "ok",
    "When you finally fall asleep and your brain remembers something embarrassing you said \
     in 2009, and now you have to replay it forty times while your heart races and every \
     possible worst case scenario about tomorrow's meeting, your health, your friends and the \
     rent lines up to be considered one by one until the sun comes up and the alarm rings \
     and you have to pretend at breakfast that you slept like a baby.",
];

fn encode(files: &ModelFiles, layers: usize, pooling: Pooling, batch: usize) -> Result<Tensor> {
    let options = TextEncoderOptions { max_length: 128, layers, pooling, batch_size: batch };
    let encoder = TextEncoder::load(files, &Device::Cpu, options)?;
    let lengths: Vec<usize> = SENTENCES
        .iter()
        .map(|s| encoder.tokenizer().encode(*s, true).unwrap().get_ids().len())
        .collect();
    assert_eq!(lengths, [17, 3, 82], "same tokenisation as transformers");
    let texts: Vec<String> = SENTENCES.iter().map(|s| s.to_string()).collect();
    encoder.encode(&texts, &mut |_, _| {})
}

fn assert_close(what: &str, got: &Tensor, expected: &[f32]) -> Result<()> {
    let got = got.flatten_all()?.to_vec1::<f32>()?;
    for (index, (g, e)) in got.iter().zip(expected).enumerate() {
        assert!((g - e).abs() < 1e-4, "{what} coordinate {index}: {g} vs {e}");
    }
    Ok(())
}

/// Reference values from Hugging Face transformers (PyTorch), not from candle:
/// `scripts/reference_mpnet.py models/all-mpnet-base-v2` with torch 2.15.0 and transformers
/// 5.24.0 (the three sentences as one padded batch, mean pooling over real tokens). The
/// long sentence's 82 tokens reach the log-spaced distance buckets; hidden state 6 checks
/// the states below the top, which fine-tuning starts from.
#[test]
fn mpnet_matches_transformers_reference_values() -> Result<()> {
    let Some(files) = mpnet() else { return Ok(()) };
    let top_mean: [[f32; 6]; 3] = [
        [-0.045605, 0.066775, -0.011733, -0.059433, 0.012213, 0.113667],
        [0.089225, -0.077783, -0.001145, 0.078777, -0.001064, -0.004595],
        [0.011227, -0.003930, 0.053901, -0.238744, -0.147995, -0.028099],
    ];
    let state6_mean: [[f32; 6]; 3] = [
        [0.095119, 0.241248, 0.056295, -0.075160, 0.016044, -0.197987],
        [0.144223, 0.264439, -0.046255, 0.100637, -0.071699, 0.018716],
        [-0.092130, -0.178704, 0.134841, 0.077419, 0.100897, 0.044764],
    ];
    let top_first: [[f32; 6]; 3] = [
        [-0.133533, 0.014804, 0.011054, -0.008793, -0.107984, 0.141435],
        [0.133640, -0.285757, 0.052815, 0.082460, 0.051786, -0.011215],
        [-0.105591, -0.047607, 0.095510, -0.094349, -0.186244, -0.004691],
    ];
    // Hidden states 6..=12 exposed; batches of two, so padding differs from the reference's.
    let mean = encode(&files, 7, Pooling::Mean, 2)?;
    assert_eq!(mean.dims(), &[3, 7, 768]);
    let cls = encode(&files, 1, Pooling::Cls, 3)?;
    for text in 0..3 {
        let row = mean.narrow(0, text, 1)?;
        assert_close(&format!("text {text} top mean"), &row.narrow(1, 6, 1)?, &top_mean[text])?;
        assert_close(
            &format!("text {text} state 6 mean"),
            &row.narrow(1, 0, 1)?,
            &state6_mean[text],
        )?;
        assert_close(
            &format!("text {text} first token"),
            &cls.narrow(0, text, 1)?,
            &top_first[text],
        )?;
    }
    Ok(())
}
