//! Tiny random checkpoints and synthetic datasets for tests and demos.
//!
//! The checkpoints are written in the Hugging Face layout of the real models
//! (`config.json`, `model.safetensors`, `tokenizer.json`), so tests load them through the
//! same [`crate::encoders::resolve_model`] path as real checkpoints. Weights come from a
//! fixed seed: the same fixture gives the same files, hence the same fingerprint.
//! [`write_slow_tokenizer`] writes a tokenizer in the older layout without `tokenizer.json`.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use rand::{Rng, SeedableRng};
use serde_json::json;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::processors::bert::BertProcessing;
use tokenizers::processors::roberta::RobertaProcessing;
use tokenizers::{AddedToken, Model, ModelWrapper, Tokenizer};

use crate::encoders::clip::{ClipVisionConfig, ClipVisionModel};
use crate::encoders::text_model::{parse_config, TextModel};

/// Width of every tiny model.
pub const TINY_HIDDEN: usize = 32;
/// Transformer layers of every tiny model (so `TINY_LAYERS + 1` hidden states).
pub const TINY_LAYERS: usize = 2;
/// Side of the tiny CLIP's input images, in pixels (patches of 8: a 4 x 4 grid).
pub const TINY_IMAGE_SIZE: usize = 32;

/// A BERT checkpoint (WordPiece, uncased) with tensors at the root, like all-MiniLM-L6-v2.
pub fn write_tiny_bert(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tokenizer = tiny_bert_tokenizer()?;
    let config = json!({
        "architectures": ["BertModel"], "model_type": "bert",
        "vocab_size": tokenizer.get_vocab_size(true), "hidden_size": TINY_HIDDEN,
        "num_hidden_layers": TINY_LAYERS, "num_attention_heads": 4, "intermediate_size": 64,
        "hidden_act": "gelu", "max_position_embeddings": 128, "type_vocab_size": 2,
        "layer_norm_eps": 1e-12, "pad_token_id": 0, "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1, "initializer_range": 0.02
    });
    write_text_model(dir, &config, &tokenizer, "", 7)
}

/// A RoBERTa checkpoint (byte-level BPE) with tensors under `roberta.`, like
/// mental/mental-roberta-base: padding id 1, positions from 2, one token type.
pub fn write_tiny_roberta(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tokenizer = tiny_roberta_tokenizer()?;
    let config = json!({
        "architectures": ["RobertaModel"], "model_type": "roberta",
        "vocab_size": tokenizer.get_vocab_size(true), "hidden_size": TINY_HIDDEN,
        "num_hidden_layers": TINY_LAYERS, "num_attention_heads": 4, "intermediate_size": 64,
        "hidden_act": "gelu", "max_position_embeddings": 130, "type_vocab_size": 1,
        "layer_norm_eps": 1e-5, "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2,
        "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1, "initializer_range": 0.02
    });
    write_text_model(dir, &config, &tokenizer, "roberta", 11)
}

/// An MPNet checkpoint (WordPiece, uncased, RoBERTa-style special tokens) with tensors under
/// `mpnet.`, as a checkpoint saved from `MPNetForMaskedLM` nests them; the architecture of
/// all-mpnet-base-v2: padding id 1, positions from 2, no token types, a relative-position
/// bias of 32 buckets.
pub fn write_tiny_mpnet(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tokenizer = tiny_mpnet_tokenizer()?;
    let config = json!({
        "architectures": ["MPNetForMaskedLM"], "model_type": "mpnet",
        "vocab_size": tokenizer.get_vocab_size(true), "hidden_size": TINY_HIDDEN,
        "num_hidden_layers": TINY_LAYERS, "num_attention_heads": 4, "intermediate_size": 64,
        "hidden_act": "gelu", "max_position_embeddings": 130, "layer_norm_eps": 1e-5,
        "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2,
        "relative_attention_num_buckets": 32, "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1, "initializer_range": 0.02
    });
    write_text_model(dir, &config, &tokenizer, "mpnet", 17)
}

/// A full-CLIP-style checkpoint: `vision_config` nested in `config.json`, tensors under
/// `vision_model.`, like openai/clip-vit-base-patch32 (no text tower).
pub fn write_tiny_clip(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let config = json!({
        "architectures": ["CLIPModel"], "model_type": "clip", "projection_dim": 16,
        "vision_config": {
            "model_type": "clip_vision_model", "hidden_size": TINY_HIDDEN,
            "intermediate_size": 64, "num_hidden_layers": TINY_LAYERS,
            "num_attention_heads": 4, "num_channels": 3, "image_size": TINY_IMAGE_SIZE,
            "patch_size": 8, "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5
        }
    });
    let text = serde_json::to_string_pretty(&config)?;
    let parsed = ClipVisionConfig::from_json(&text)?;
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    ClipVisionModel::new(vb.pp("vision_model"), &parsed)?;
    randomise(&varmap, 13)?;
    std::fs::write(dir.join("config.json"), text)?;
    varmap.save(dir.join("model.safetensors"))?;
    Ok(())
}

fn write_text_model(
    dir: &Path,
    config: &serde_json::Value,
    tokenizer: &Tokenizer,
    prefix: &str,
    seed: u64,
) -> Result<()> {
    let text = serde_json::to_string_pretty(config)?;
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    TextModel::new(if prefix.is_empty() { vb } else { vb.pp(prefix) }, parse_config(&text)?)?;
    randomise(&varmap, seed)?;
    std::fs::write(dir.join("config.json"), text)?;
    varmap.save(dir.join("model.safetensors"))?;
    tokenizer
        .save(dir.join("tokenizer.json"), true)
        .map_err(|e| anyhow!("writing {}: {e}", dir.join("tokenizer.json").display()))
}

/// Gives every variable seeded random values. Norm scales stay near 1 and biases are
/// non-zero, so that a swapped or ignored tensor changes the output.
fn randomise(varmap: &VarMap, seed: u64) -> Result<()> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let vars = varmap.data().lock().map_err(|_| anyhow!("variable map poisoned"))?;
    let mut names: Vec<&String> = vars.keys().collect();
    names.sort();
    for name in names {
        let var = &vars[name];
        let count = var.elem_count();
        let is_norm =
            ["LayerNorm", "layer_norm", "layrnorm", "layernorm"].iter().any(|n| name.contains(n));
        let (centre, spread) = match (is_norm, name.ends_with(".weight")) {
            (true, true) => (1.0, 0.1),
            (_, false) => (0.0, 0.05),
            (false, true) => (0.0, 0.2),
        };
        let values: Vec<f32> =
            (0..count).map(|_| centre + rng.random_range(-spread..spread)).collect();
        var.set(&Tensor::from_vec(values, var.shape(), &Device::Cpu)?)?;
    }
    Ok(())
}

/// Words and subwords of meme-like English, so that tiny-model tests see real tokens.
const WORDS: &[&str] = &[
    "the",
    "and",
    "to",
    "of",
    "me",
    "my",
    "you",
    "is",
    "it",
    "when",
    "feel",
    "anxiety",
    "anxious",
    "worry",
    "panic",
    "sad",
    "happy",
    "day",
    "night",
    "everything",
    "nothing",
    "can",
    "not",
    "stop",
    "about",
    "why",
    "so",
    "just",
    "cat",
    "dog",
    "meme",
    "brain",
    "sleep",
    "##s",
    "##ing",
    "##ed",
    "##ly",
    "##er",
    "##y",
];

/// Writes `tokenizer` the way checkpoints without `tokenizer.json` ship it: `vocab.json` +
/// `merges.txt` (byte-level BPE) or `vocab.txt` (WordPiece), with the special tokens of its
/// family (RoBERTa or BERT) in `special_tokens_map.json`, and for WordPiece a
/// `tokenizer_config.json` that says it lowercases.
pub fn write_slow_tokenizer(tokenizer: &Tokenizer, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let model = tokenizer.get_model();
    model
        .save(dir, None)
        .map_err(|e| anyhow!("writing the vocabulary to {}: {e}", dir.display()))?;
    // Only the tokens the vocabulary has: the tiny RoBERTa has no <mask>.
    let roles: &[(&str, &str)] = match model {
        ModelWrapper::BPE(_) => &[
            ("bos_token", "<s>"),
            ("eos_token", "</s>"),
            ("unk_token", "<unk>"),
            ("sep_token", "</s>"),
            ("pad_token", "<pad>"),
            ("cls_token", "<s>"),
            ("mask_token", "<mask>"),
        ],
        ModelWrapper::WordPiece(_) => {
            let config = json!({"do_lower_case": true, "tokenizer_class": "BertTokenizer"});
            std::fs::write(dir.join("tokenizer_config.json"), config.to_string())?;
            &[
                ("unk_token", "[UNK]"),
                ("sep_token", "[SEP]"),
                ("pad_token", "[PAD]"),
                ("cls_token", "[CLS]"),
                ("mask_token", "[MASK]"),
            ]
        }
        _ => bail!("write_slow_tokenizer handles BPE and WordPiece tokenizers only"),
    };
    let map: serde_json::Map<String, serde_json::Value> = roles
        .iter()
        .filter(|(_, token)| model.token_to_id(token).is_some())
        .map(|(role, token)| (role.to_string(), json!(token)))
        .collect();
    std::fs::write(dir.join("special_tokens_map.json"), serde_json::to_string_pretty(&map)?)?;
    Ok(())
}

/// The tiny BERT's tokenizer: lowercasing WordPiece over letters, digits and meme words.
pub fn tiny_bert_tokenizer() -> Result<Tokenizer> {
    let specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];
    let mut tokenizer = tiny_wordpiece(&specials, "[UNK]")?;
    tokenizer
        .with_post_processor(Some(BertProcessing::new(("[SEP]".into(), 3), ("[CLS]".into(), 2))));
    Ok(tokenizer)
}

/// The tiny MPNet's tokenizer: the tiny BERT's WordPiece with MPNet's special tokens and
/// ids (`<s>` 0, `<pad>` 1, `</s>` 2), wrapping texts as RoBERTa does (`<s> … </s>`).
pub fn tiny_mpnet_tokenizer() -> Result<Tokenizer> {
    let specials = ["<s>", "<pad>", "</s>", "[UNK]", "<mask>"];
    let mut tokenizer = tiny_wordpiece(&specials, "[UNK]")?;
    tokenizer.with_post_processor(Some(
        RobertaProcessing::new(("</s>".into(), 2), ("<s>".into(), 0))
            .trim_offsets(true)
            .add_prefix_space(false),
    ));
    Ok(tokenizer)
}

/// Lowercasing WordPiece over `specials` (ids from 0), letters, digits and meme words,
/// without a post-processor.
fn tiny_wordpiece(specials: &[&str], unk: &str) -> Result<Tokenizer> {
    let mut tokens: Vec<String> = specials.iter().map(|s| s.to_string()).collect();
    let mut seen: BTreeSet<String> = tokens.iter().cloned().collect();
    let letters = ('a'..='z').chain('0'..='9').map(String::from);
    let pieces = ('a'..='z').chain('0'..='9').map(|c| format!("##{c}"));
    let punctuation = ".,!?'\"-:;()/*&#@".chars().map(String::from);
    for token in letters.chain(pieces).chain(punctuation).chain(WORDS.iter().map(|w| w.to_string()))
    {
        if seen.insert(token.clone()) {
            tokens.push(token);
        }
    }
    let vocab: Vocab = tokens.iter().enumerate().map(|(i, t)| (t.clone(), i as u32)).collect();
    let model = WordPiece::builder()
        .vocab(vocab)
        .unk_token(unk.into())
        .continuing_subword_prefix("##".into())
        .build()
        .map_err(|e| anyhow!("building the tiny WordPiece model: {e}"))?;
    let mut tokenizer = Tokenizer::new(model);
    tokenizer
        .with_normalizer(Some(BertNormalizer::new(true, true, None, true)))
        .map_err(|e| anyhow!("{e}"))?;
    tokenizer.with_pre_tokenizer(Some(BertPreTokenizer));
    tokenizer.with_decoder(Some(tokenizers::decoders::wordpiece::WordPiece::default()));
    let added: Vec<AddedToken> = specials.iter().map(|s| AddedToken::from(*s, true)).collect();
    tokenizer.add_special_tokens(added).map_err(|e| anyhow!("adding special tokens: {e}"))?;
    Ok(tokenizer)
}

/// The tiny RoBERTa's tokenizer: byte-level BPE over all bytes with a few merges.
pub fn tiny_roberta_tokenizer() -> Result<Tokenizer> {
    let specials = ["<s>", "<pad>", "</s>", "<unk>"];
    let mut tokens: Vec<String> = specials.iter().map(|s| s.to_string()).collect();
    // Every byte has a symbol, so any text is encodable; the merges give a few whole words
    // ("Ġ" is the byte-level symbol of a leading space).
    let mut alphabet: Vec<char> = ByteLevel::alphabet().into_iter().collect();
    alphabet.sort();
    tokens.extend(alphabet.iter().map(|c| c.to_string()));
    let merges: Vec<(String, String)> = [
        ("Ġ", "t"),
        ("h", "e"),
        ("Ġt", "he"),
        ("i", "n"),
        ("in", "g"),
        ("Ġ", "a"),
        ("Ġa", "n"),
        ("Ġan", "d"),
        ("Ġ", "m"),
        ("Ġm", "e"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    for (a, b) in &merges {
        tokens.push(format!("{a}{b}"));
    }
    let vocab: Vocab = tokens.iter().enumerate().map(|(i, t)| (t.clone(), i as u32)).collect();
    let model = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .unk_token("<unk>".into())
        .build()
        .map_err(|e| anyhow!("building the tiny BPE model: {e}"))?;
    let mut tokenizer = Tokenizer::new(model);
    tokenizer.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
    tokenizer.with_post_processor(Some(
        RobertaProcessing::new(("</s>".into(), 2), ("<s>".into(), 0))
            .trim_offsets(true)
            .add_prefix_space(false),
    ));
    tokenizer.with_decoder(Some(ByteLevel::default()));
    let added: Vec<AddedToken> = specials.iter().map(|s| AddedToken::from(*s, true)).collect();
    tokenizer.add_special_tokens(added).map_err(|e| anyhow!("adding special tokens: {e}"))?;
    Ok(tokenizer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiny_tokenizers_add_the_special_tokens_of_their_family() -> Result<()> {
        let bert = tiny_bert_tokenizer()?;
        let encoding = bert.encode("I feel anxious", true).map_err(|e| anyhow!("{e}"))?;
        assert_eq!(encoding.get_tokens(), &["[CLS]", "i", "feel", "anxious", "[SEP]"]);
        let unknown = bert.encode("Ü€", true).map_err(|e| anyhow!("{e}"))?;
        assert!(unknown.get_tokens().contains(&"[UNK]".to_string()), "{unknown:?}");

        let roberta = tiny_roberta_tokenizer()?;
        let encoding = roberta.encode("the cat and me", true).map_err(|e| anyhow!("{e}"))?;
        let ids = encoding.get_ids();
        assert_eq!((ids[0], ids[ids.len() - 1]), (0, 2), "<s> ... </s>");
        assert!(encoding.get_tokens().contains(&"Ġand".to_string()), "{encoding:?}");
        let empty = roberta.encode("", true).map_err(|e| anyhow!("{e}"))?;
        assert_eq!(empty.get_ids(), &[0, 2]);

        let mpnet = tiny_mpnet_tokenizer()?;
        let encoding = mpnet.encode("I feel anxious", true).map_err(|e| anyhow!("{e}"))?;
        assert_eq!(encoding.get_tokens(), &["<s>", "i", "feel", "anxious", "</s>"]);
        assert_eq!((encoding.get_ids()[0], encoding.get_ids()[4]), (0, 2));
        assert_eq!(mpnet.token_to_id("<pad>"), Some(1));
        Ok(())
    }

    #[test]
    fn fixtures_are_deterministic() -> Result<()> {
        let dir = tempfile::tempdir()?;
        write_tiny_clip(&dir.path().join("a"))?;
        write_tiny_clip(&dir.path().join("b"))?;
        let read = |sub: &str| std::fs::read(dir.path().join(sub).join("model.safetensors"));
        assert_eq!(read("a")?, read("b")?);
        Ok(())
    }
}
