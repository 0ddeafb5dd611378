//! The text encoder on the real all-MiniLM-L6-v2 (`./scripts/fetch-model.sh minilm` installs it in
//! `models/`), checked against two independent implementations. Skips with a note when the
//! model is absent.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use memescope::config::Pooling;
use memescope::encoders::tokenizer::SettingsFiles;
use memescope::encoders::{
    resolve_model, ModelFiles, TextEncoder, TextEncoderOptions, TokenizerFiles,
};

fn minilm() -> Option<ModelFiles> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/all-MiniLM-L6-v2");
    if !dir.join("model.safetensors").is_file() {
        eprintln!("note: {} absent (run ./scripts/fetch-model.sh minilm); skipping", dir.display());
        return None;
    }
    Some(resolve_model(dir.to_str().unwrap(), true).expect("MiniLM folder resolves"))
}

fn options(pooling: Pooling, batch_size: usize) -> TextEncoderOptions {
    TextEncoderOptions { max_length: 128, layers: 1, pooling, batch_size }
}

/// candle_transformers' BertModel on one padded batch, mean-pooled over real tokens.
struct CandleReference {
    model: candle_transformers::models::bert::BertModel,
    tokenizer: tokenizers::Tokenizer,
}

impl CandleReference {
    fn load(files: &ModelFiles) -> Result<Self> {
        let config = serde_json::from_str(&std::fs::read_to_string(&files.config)?)?;
        let weights = [files.weights.clone()];
        let vb =
            unsafe { VarBuilder::from_mmaped_safetensors(&weights, DType::F32, &Device::Cpu)? };
        let model = candle_transformers::models::bert::BertModel::load(vb, &config)?;
        let mut tokenizer = files.tokenizer.as_ref().unwrap().load(&files.spec)?;
        tokenizer.with_padding(Some(tokenizers::PaddingParams::default()));
        tokenizer
            .with_truncation(Some(tokenizers::TruncationParams {
                max_length: 128,
                ..Default::default()
            }))
            .unwrap();
        Ok(Self { model, tokenizer })
    }

    fn encode(&self, texts: &[&str]) -> Result<Tensor> {
        let encodings = self.tokenizer.encode_batch(texts.to_vec(), true).unwrap();
        let rows = |f: &dyn Fn(&tokenizers::Encoding) -> Vec<u32>| -> Result<Tensor> {
            let rows: Vec<Tensor> = encodings
                .iter()
                .map(|e| Tensor::new(f(e).as_slice(), &Device::Cpu))
                .collect::<candle_core::Result<_>>()?;
            Ok(Tensor::stack(&rows, 0)?)
        };
        let ids = rows(&|e| e.get_ids().to_vec())?;
        let types = rows(&|e| e.get_type_ids().to_vec())?;
        let mask = rows(&|e| e.get_attention_mask().to_vec())?;
        let hidden = self.model.forward(&ids, &types, Some(&mask))?;
        let weights = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        Ok(hidden.broadcast_mul(&weights)?.sum(1)?.broadcast_div(&weights.sum(1)?)?)
    }
}

#[test]
fn minilm_matches_candle_transformers_on_a_mixed_length_batch() -> Result<()> {
    let Some(files) = minilm() else { return Ok(()) };
    let texts = [
        "ok",
        "",
        "When you finally fall asleep and your brain remembers something embarrassing you \
         said in 2009, and now you have to replay it forty times while your heart races and \
         every possible worst case scenario about tomorrow's meeting, your health, your \
         friends and the rent lines up to be considered one by one until the sun comes up.",
        "me pretending to be fine",
        "Nobody: / My anxiety at 3am:",
    ];
    let encoder = TextEncoder::load(&files, &Device::Cpu, options(Pooling::Mean, 8))?;
    let owned: Vec<String> = texts.iter().map(|t| t.to_string()).collect();
    let ours = encoder.encode(&owned, &mut |_, _| {})?.squeeze(1)?;
    let theirs = CandleReference::load(&files)?.encode(&texts)?;
    assert_eq!(ours.dims(), &[5, 384]);
    let diff = (ours - theirs)?.abs()?.max_all()?.to_scalar::<f32>()?;
    assert!(diff < 1e-4, "max abs difference {diff}");
    Ok(())
}

/// MiniLM ships both tokenizer forms, so the WordPiece tokenizer we build from `vocab.txt`
/// (for checkpoints without `tokenizer.json`) is checked against its `tokenizer.json` on
/// real meme texts (every sixth AxiOM text, when the data is present) and on hard cases.
#[test]
fn minilm_vocab_txt_tokenizes_like_its_tokenizer_json() -> Result<()> {
    let Some(files) = minilm() else { return Ok(()) };
    let dir = files.config.parent().unwrap();
    let mut reference = files.tokenizer.as_ref().unwrap().load(&files.spec)?;
    assert!(matches!(files.tokenizer, Some(TokenizerFiles::Json(_))), "tokenizer.json preferred");
    // Its tokenizer.json pads and truncates to 128; the built one does neither.
    reference.with_padding(None);
    reference.with_truncation(None).unwrap();
    let slow = TokenizerFiles::WordPiece {
        vocab: dir.join("vocab.txt"),
        settings: SettingsFiles {
            tokenizer_config: Some(dir.join("tokenizer_config.json")),
            special_tokens_map: Some(dir.join("special_tokens_map.json")),
        },
    };
    let built = slow.load(&files.spec)?;

    let mut texts: Vec<String> = [
        "Café NAÏVE résumé — “quotes” 😰 #anxiety @me",
        "日本語 and 中文, ΑΓΩΝΙΑ and тревога",
        "tab\tnew\nline\u{0}null\u{200b}zero-width\u{301}combining",
        "[MASK] [CLS] text [SEP] [UNK] [PAD] [mask]",
        "supercalifragilisticexpialidociousandthensomemoreletterstomakeawordlongerthanonehundredcharactersforsure",
    ]
    .iter()
    .map(|t| t.to_string())
    .collect();
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/axiom/train.json");
    match std::fs::read_to_string(&data) {
        Ok(text) => {
            let records: Vec<serde_json::Value> = serde_json::from_str(&text)?;
            texts.extend(
                records.iter().step_by(6).map(|r| r["ocr_text"].as_str().unwrap().to_string()),
            );
        }
        Err(_) => eprintln!("note: {} absent; hard cases only", data.display()),
    }
    for text in &texts {
        let expected = reference.encode(text.as_str(), true).unwrap();
        let got = built.encode(text.as_str(), true).unwrap();
        assert_eq!(got.get_ids(), expected.get_ids(), "{text:?}");
        assert_eq!(got.get_type_ids(), expected.get_type_ids(), "{text:?}");
        assert_eq!(got.get_offsets(), expected.get_offsets(), "{text:?}");
    }
    eprintln!("{} texts tokenised identically", texts.len());
    Ok(())
}

/// Reference values from Hugging Face transformers (PyTorch), not from candle:
/// `scripts/reference_embedding.py models/all-MiniLM-L6-v2` with torch 2.15.0,
/// transformers 5.24.0 and sentence-transformers 6.2.0 (which it also checks against), in a
/// venv made by `python3 -m venv /tmp/refenv && /tmp/refenv/bin/pip install torch
/// transformers sentence-transformers`.
#[test]
fn minilm_matches_transformers_reference_values() -> Result<()> {
    let Some(files) = minilm() else { return Ok(()) };
    let sentence = "I can't stop worrying about everything, even when nothing is wrong.";
    let mean =
        [0.257561f32, -0.134849, 0.091924, 0.288821, 0.264893, -0.200426, 0.282447, -0.230744];
    let cls =
        [0.151794f32, 0.022154, 0.159302, 0.123371, -0.154908, -0.387167, 0.170990, -0.260930];
    for (pooling, expected) in [(Pooling::Mean, mean), (Pooling::Cls, cls)] {
        let encoder = TextEncoder::load(&files, &Device::Cpu, options(pooling, 4))?;
        let tokens = encoder.tokenizer().encode(sentence, true).unwrap();
        assert_eq!(tokens.get_ids().len(), 17, "same tokenisation as transformers");
        let got = encoder.encode(&[sentence.to_string()], &mut |_, _| {})?;
        let got = got.flatten_all()?.to_vec1::<f32>()?;
        for (index, (g, e)) in got.iter().zip(expected).enumerate() {
            assert!((g - e).abs() < 5e-5, "{pooling:?} coordinate {index}: {g} vs {e}");
        }
    }
    Ok(())
}

/// A measurement, not a check: `cargo test --release --test encoders_minilm -- --ignored
/// --nocapture` prints texts/s for our encoder and candle_transformers' BertModel on the
/// AxiOM texts (same batch size and max length; candle's in file order).
#[test]
#[ignore]
fn minilm_throughput_on_axiom() -> Result<()> {
    let Some(files) = minilm() else { return Ok(()) };
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/axiom/train.json");
    let Ok(text) = std::fs::read_to_string(&data) else {
        eprintln!("note: {} absent; skipping", data.display());
        return Ok(());
    };
    let records: Vec<serde_json::Value> = serde_json::from_str(&text)?;
    let limit: usize =
        std::env::var("MEMESCOPE_BENCH_TEXTS").ok().and_then(|n| n.parse().ok()).unwrap_or(615);
    let texts: Vec<String> = records
        .iter()
        .take(limit)
        .map(|r| r["ocr_text"].as_str().unwrap_or("").to_string())
        .collect();
    let encoder = TextEncoder::load(&files, &Device::Cpu, options(Pooling::Mean, 32))?;
    let start = Instant::now();
    encoder.encode(&texts, &mut |_, _| {})?;
    let ours = texts.len() as f64 / start.elapsed().as_secs_f64();
    let reference = CandleReference::load(&files)?;
    let start = Instant::now();
    for chunk in texts.chunks(32) {
        let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
        reference.encode(&refs)?;
    }
    let theirs = texts.len() as f64 / start.elapsed().as_secs_f64();
    println!(
        "{} texts: memescope {ours:.1} texts/s, candle BertModel {theirs:.1} texts/s",
        texts.len()
    );
    Ok(())
}
