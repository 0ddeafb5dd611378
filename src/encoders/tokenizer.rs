//! A text encoder's tokenizer, from whichever form its checkpoint ships.
//!
//! Current checkpoints carry a serialized fast tokenizer, `tokenizer.json`. Many older ones
//! (mental/mental-roberta-base and early BERTs among them) carry only the files of the
//! "slow" Python tokenizer: `vocab.json` + `merges.txt` (RoBERTa's byte-level BPE) or
//! `vocab.txt` (BERT's WordPiece), with settings in `tokenizer_config.json` and
//! `special_tokens_map.json`. From those we build the pipeline that transformers'
//! `convert_slow_tokenizer` builds, so both forms give the same ids.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use tokenizers::models::bpe::BPE;
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::processors::bert::BertProcessing;
use tokenizers::processors::roberta::RobertaProcessing;
use tokenizers::{AddedToken, Tokenizer};

use super::tokenizer_settings::{ConfiguredToken, TokenizerSettings, ROLES};

pub const TOKENIZER_JSON: &str = "tokenizer.json";
const BPE_VOCAB: &str = "vocab.json";
const BPE_MERGES: &str = "merges.txt";
const WORDPIECE_VOCAB: &str = "vocab.txt";
const TOKENIZER_CONFIG: &str = "tokenizer_config.json";
const SPECIAL_TOKENS_MAP: &str = "special_tokens_map.json";

/// What a checkpoint needs for its tokenizer, for "missing" messages.
pub const TOKENIZER_FORMS: &str = "tokenizer.json (or vocab.json + merges.txt, or vocab.txt)";

/// The files of one tokenizer, in one of the forms a checkpoint may ship.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenizerFiles {
    /// A serialized fast tokenizer.
    Json(PathBuf),
    /// RoBERTa-style byte-level BPE.
    ByteLevelBpe { vocab: PathBuf, merges: PathBuf, settings: SettingsFiles },
    /// BERT-style WordPiece.
    WordPiece { vocab: PathBuf, settings: SettingsFiles },
}

/// The optional settings files beside a vocabulary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SettingsFiles {
    pub tokenizer_config: Option<PathBuf>,
    pub special_tokens_map: Option<PathBuf>,
}

impl TokenizerFiles {
    /// Finds a tokenizer among a checkpoint's files, preferring `tokenizer.json`.
    /// `lookup(name)` gives the local path of file `name`, `None` when the checkpoint lacks
    /// it (a folder, the hub cache and a download all fit behind it). `None` when no form is
    /// complete; [`TOKENIZER_FORMS`] then says what is missing.
    pub fn find(mut lookup: impl FnMut(&str) -> Result<Option<PathBuf>>) -> Result<Option<Self>> {
        if let Some(json) = lookup(TOKENIZER_JSON)? {
            return Ok(Some(Self::Json(json)));
        }
        // A vocab.json without merges.txt is some other tokenizer (e.g. a CTC vocabulary).
        let bpe = match lookup(BPE_VOCAB)? {
            Some(vocab) => lookup(BPE_MERGES)?.map(|merges| (vocab, merges)),
            None => None,
        };
        let wordpiece = if bpe.is_none() { lookup(WORDPIECE_VOCAB)? } else { None };
        if bpe.is_none() && wordpiece.is_none() {
            return Ok(None);
        }
        let settings = SettingsFiles {
            tokenizer_config: lookup(TOKENIZER_CONFIG)?,
            special_tokens_map: lookup(SPECIAL_TOKENS_MAP)?,
        };
        Ok(Some(match (bpe, wordpiece) {
            (Some((vocab, merges)), _) => Self::ByteLevelBpe { vocab, merges, settings },
            (None, Some(vocab)) => Self::WordPiece { vocab, settings },
            (None, None) => unreachable!("returned above"),
        }))
    }

    /// Every file with its role, for fingerprints. A `tokenizer.json` keeps the role it had
    /// before the other forms existed, so feature caches stay valid.
    pub fn parts(&self) -> Vec<(&'static str, &Path)> {
        match self {
            Self::Json(path) => vec![("tokenizer", path)],
            Self::ByteLevelBpe { vocab, merges, settings: s } => {
                [("tokenizer.vocab", vocab.as_path()), ("tokenizer.merges", merges.as_path())]
                    .into_iter()
                    .chain(s.parts())
                    .collect()
            }
            Self::WordPiece { vocab, settings: s } => {
                std::iter::once(("tokenizer.vocab", vocab.as_path())).chain(s.parts()).collect()
            }
        }
    }

    /// Builds the tokenizer, with whatever padding and truncation its files ask for.
    /// `spec` names the checkpoint in messages and, where no setting says whether a BERT
    /// vocabulary is cased, decides it by name (see [`lowercases`]).
    pub fn load(&self, spec: &str) -> Result<Tokenizer> {
        match self {
            Self::Json(path) => Tokenizer::from_file(path)
                .map_err(|e| anyhow!("reading tokenizer {}: {e}", path.display())),
            Self::ByteLevelBpe { vocab, merges, settings } => {
                let read = settings.read()?;
                byte_level_bpe(vocab, merges, &read).with_context(|| {
                    format!("building the tokenizer of `{spec}` from {BPE_VOCAB} + {BPE_MERGES}")
                })
            }
            Self::WordPiece { vocab, settings } => {
                let read = settings.read()?;
                word_piece(vocab, &read, lowercases(&read, spec)).with_context(|| {
                    format!("building the tokenizer of `{spec}` from {WORDPIECE_VOCAB}")
                })
            }
        }
    }
}

impl SettingsFiles {
    fn parts(&self) -> impl Iterator<Item = (&'static str, &Path)> {
        let config = self.tokenizer_config.as_deref().map(|p| ("tokenizer.config", p));
        let map = self.special_tokens_map.as_deref().map(|p| ("tokenizer.special_tokens", p));
        config.into_iter().chain(map)
    }

    fn read(&self) -> Result<TokenizerSettings> {
        TokenizerSettings::read(
            self.tokenizer_config.as_deref(),
            self.special_tokens_map.as_deref(),
        )
    }
}

/// RoBERTa as transformers converts it: byte-level pre-tokenizer and decoder, BPE, and
/// `<s> … </s>` around each text.
fn byte_level_bpe(vocab: &Path, merges: &Path, settings: &TokenizerSettings) -> Result<Tokenizer> {
    let (vocab_map, merge_list) = BPE::read_file(path_text(vocab)?, path_text(merges)?)
        .map_err(|e| anyhow!("reading {} and {}: {e}", vocab.display(), merges.display()))?;
    // RoBERTa's <mask> absorbs the space before it, so "a <mask>" reads like "a<mask>".
    let defaults = [
        ("bos_token", special("<s>")),
        ("eos_token", special("</s>")),
        ("unk_token", special("<unk>")),
        ("sep_token", special("</s>")),
        ("pad_token", special("<pad>")),
        ("cls_token", special("<s>")),
        ("mask_token", special("<mask>").lstrip(true)),
    ];
    let unk = role_token(settings, &defaults, "unk_token").map(|t| t.content);
    let mut builder = BPE::builder();
    // Every byte has a symbol, so <unk> is never needed for a full vocabulary; it only
    // stands in (rather than a silent drop) for bytes a trimmed vocabulary lacks.
    if let Some(unk) = unk.filter(|unk| vocab_map.contains_key(unk)) {
        builder = builder.unk_token(unk);
    }
    let model = builder
        .vocab_and_merges(vocab_map, merge_list)
        .build()
        .map_err(|e| anyhow!("building the BPE model: {e}"))?;
    let add_prefix_space = settings.add_prefix_space.unwrap_or(false);
    let mut tokenizer = Tokenizer::new(model);
    tokenizer.with_pre_tokenizer(Some(ByteLevel::new(add_prefix_space, true, true)));
    tokenizer.with_decoder(Some(ByteLevel::default()));
    add_special_tokens(&mut tokenizer, settings, &defaults)?;
    let (sep, cls) = sep_and_cls(&tokenizer, settings, &defaults)?;
    tokenizer.with_post_processor(Some(
        RobertaProcessing::new(sep, cls).trim_offsets(true).add_prefix_space(add_prefix_space),
    ));
    Ok(tokenizer)
}

/// BERT as transformers converts it: BERT normalizer and pre-tokenizer, WordPiece with
/// `##` continuations, and `[CLS] … [SEP]` around each text.
fn word_piece(vocab: &Path, settings: &TokenizerSettings, lowercase: bool) -> Result<Tokenizer> {
    let vocab_map = WordPiece::read_file(path_text(vocab)?)
        .map_err(|e| anyhow!("reading {}: {e}", vocab.display()))?;
    let defaults = [
        ("unk_token", special("[UNK]")),
        ("sep_token", special("[SEP]")),
        ("pad_token", special("[PAD]")),
        ("cls_token", special("[CLS]")),
        ("mask_token", special("[MASK]")),
    ];
    let unk = role_token(settings, &defaults, "unk_token")
        .context("the settings switch off unk_token, which WordPiece needs")?;
    let model = WordPiece::builder()
        .vocab(vocab_map)
        .unk_token(unk.content)
        .continuing_subword_prefix("##".into())
        .build()
        .map_err(|e| anyhow!("building the WordPiece model: {e}"))?;
    let mut tokenizer = Tokenizer::new(model);
    let normalizer = BertNormalizer::new(
        true,
        settings.tokenize_chinese_chars.unwrap_or(true),
        settings.strip_accents,
        lowercase,
    );
    tokenizer.with_normalizer(Some(normalizer)).map_err(|e| anyhow!("{e}"))?;
    tokenizer.with_pre_tokenizer(Some(BertPreTokenizer));
    tokenizer.with_decoder(Some(tokenizers::decoders::wordpiece::WordPiece::default()));
    add_special_tokens(&mut tokenizer, settings, &defaults)?;
    let (sep, cls) = sep_and_cls(&tokenizer, settings, &defaults)?;
    tokenizer.with_post_processor(Some(BertProcessing::new(sep, cls)));
    Ok(tokenizer)
}

/// Whether a WordPiece vocabulary is lowercased: as `do_lower_case` says, else by the
/// checkpoint's name, as old BERT folders without settings still tell it
/// (`bert-base-cased`); otherwise yes, transformers' `BertTokenizer` default.
pub fn lowercases(settings: &TokenizerSettings, spec: &str) -> bool {
    settings.do_lower_case.unwrap_or_else(|| {
        let name = Path::new(spec.trim_end_matches('/'))
            .file_name()
            .map(|name| name.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        let cased = name.contains("cased") && !name.contains("uncased");
        !cased
    })
}

fn special(content: &str) -> AddedToken {
    AddedToken::from(content, true)
}

/// The token a role resolves to: as configured (a plain string keeps the family's flags),
/// else the family default; `None` when the settings switch the role off.
fn role_token(
    settings: &TokenizerSettings,
    defaults: &[(&str, AddedToken)],
    role: &str,
) -> Option<AddedToken> {
    let default = defaults.iter().find(|(name, _)| *name == role).map(|(_, token)| token);
    match (settings.roles.get(role), default) {
        (Some(ConfiguredToken::Full(token)), _) => Some(token.clone()),
        (Some(ConfiguredToken::Plain(content)), Some(default)) => {
            Some(AddedToken { content: content.clone(), ..default.clone() })
        }
        (Some(ConfiguredToken::Plain(content)), None) => Some(special(content)),
        (None, _) if settings.explicitly_off(role) => None,
        (None, default) => default.cloned(),
    }
}

/// Adds the special tokens the way transformers does, so that they match in raw text and
/// keep their ids: tokens declared in `added_tokens_decoder` first, in id order and with
/// their declared flags; then the configured role and additional tokens; then family
/// defaults, but only those the vocabulary has (the model has no embedding for the others).
fn add_special_tokens(
    tokenizer: &mut Tokenizer,
    settings: &TokenizerSettings,
    defaults: &[(&str, AddedToken)],
) -> Result<()> {
    let mut tokens: Vec<AddedToken> = settings.declared.values().cloned().collect();
    let configured = ROLES
        .iter()
        .filter(|role| settings.roles.contains_key(**role))
        .filter_map(|role| role_token(settings, defaults, role))
        .chain(settings.additional.iter().map(|token| match token {
            ConfiguredToken::Full(token) => token.clone(),
            ConfiguredToken::Plain(content) => special(content),
        }));
    let fallback = defaults
        .iter()
        .filter(|(role, _)| !settings.roles.contains_key(*role) && !settings.explicitly_off(role))
        .map(|(_, token)| token.clone())
        .filter(|token| tokenizer.token_to_id(&token.content).is_some());
    for token in configured.chain(fallback) {
        if !tokens.iter().any(|known| known.content == token.content) {
            tokens.push(token);
        }
    }
    for token in tokens {
        let content = token.content.clone();
        let added = if token.special {
            tokenizer.add_special_tokens([token])
        } else {
            tokenizer.add_tokens([token])
        };
        added.map_err(|e| anyhow!("adding token {content:?}: {e}"))?;
    }
    for (id, token) in &settings.declared {
        let actual = tokenizer.token_to_id(&token.content);
        if actual != Some(*id) {
            bail!(
                "{TOKENIZER_CONFIG} declares {:?} as id {id}, but the vocabulary gives it {}",
                token.content,
                actual.map_or("no id".to_string(), |a| format!("id {a}"))
            );
        }
    }
    Ok(())
}

/// The separator and classifier tokens with their ids, for the post-processor.
fn sep_and_cls(
    tokenizer: &Tokenizer,
    settings: &TokenizerSettings,
    defaults: &[(&str, AddedToken)],
) -> Result<((String, u32), (String, u32))> {
    let with_id = |role: &str| -> Result<(String, u32)> {
        let token = role_token(settings, defaults, role)
            .with_context(|| format!("the settings switch off {role}, which the model needs"))?;
        let id = tokenizer
            .token_to_id(&token.content)
            .with_context(|| format!("{role} {:?} is not in the vocabulary", token.content))?;
        Ok((token.content, id))
    };
    Ok((with_id("sep_token")?, with_id("cls_token")?))
}

fn path_text(path: &Path) -> Result<&str> {
    path.to_str().with_context(|| format!("{} is not a UTF-8 path", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{tiny_bert_tokenizer, tiny_roberta_tokenizer, write_slow_tokenizer};

    /// Texts that exercise casing, accents, punctuation, emoji, CJK, odd spacing, control
    /// characters and literal special tokens.
    const TEXTS: &[&str] = &[
        "",
        "I feel anxious when the cat stops",
        "WHEN YOU CAN'T SLEEP AT NIGHT... and everything is SO much",
        "  leading and  double  spaces ",
        "Café naïve résumé — “quotes” 😰😰 #anxiety @me",
        "日本語 and 中文 mixed in",
        "tab\tnew\nline\u{0}null\u{200b}zero-width",
        "the [MASK] of <mask> [CLS] <s> </s> [SEP] me",
        "the thethe andand meme",
    ];

    fn ids_types_tokens(tokenizer: &Tokenizer, text: &str) -> (Vec<u32>, Vec<u32>, Vec<String>) {
        let encoding = tokenizer.encode(text, true).unwrap();
        (
            encoding.get_ids().to_vec(),
            encoding.get_type_ids().to_vec(),
            encoding.get_tokens().to_vec(),
        )
    }

    fn assert_same_encodings(expected: &Tokenizer, built: &Tokenizer, texts: &[&str]) {
        for text in texts {
            assert_eq!(ids_types_tokens(expected, text), ids_types_tokens(built, text), "{text:?}");
        }
    }

    fn find_in(dir: &Path) -> Option<TokenizerFiles> {
        TokenizerFiles::find(|name| Ok(Some(dir.join(name)).filter(|p| p.is_file()))).unwrap()
    }

    #[test]
    fn vocab_and_merges_give_the_ids_of_the_tiny_roberta_tokenizer_json() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let reference = tiny_roberta_tokenizer()?;
        write_slow_tokenizer(&reference, dir.path())?;
        let files = find_in(dir.path()).expect("vocab.json + merges.txt found");
        assert!(matches!(files, TokenizerFiles::ByteLevelBpe { .. }), "{files:?}");
        let built = files.load("tiny-roberta")?;
        assert_same_encodings(&reference, &built, TEXTS);
        let pair = |t: &Tokenizer| t.encode(("the cat", "me"), true).unwrap().get_ids().to_vec();
        assert_eq!(pair(&reference), pair(&built));
        Ok(())
    }

    #[test]
    fn vocab_txt_gives_the_ids_of_the_tiny_bert_tokenizer_json() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let reference = tiny_bert_tokenizer()?;
        write_slow_tokenizer(&reference, dir.path())?;
        let files = find_in(dir.path()).expect("vocab.txt found");
        assert!(matches!(files, TokenizerFiles::WordPiece { .. }), "{files:?}");
        assert_same_encodings(&reference, &files.load("tiny-bert")?, TEXTS);
        Ok(())
    }

    #[test]
    fn casing_follows_the_settings_then_the_name() -> Result<()> {
        let dir = tempfile::tempdir()?;
        write_slow_tokenizer(&tiny_bert_tokenizer()?, dir.path())?;
        std::fs::remove_file(dir.path().join(TOKENIZER_CONFIG))?;
        let first = |spec: &str, files: &TokenizerFiles| -> String {
            let encoding = files.load(spec).unwrap().encode("Cat", false).unwrap();
            encoding.get_tokens()[0].clone()
        };
        let files = find_in(dir.path()).unwrap();
        assert_eq!(first("google-bert/bert-base-uncased", &files), "cat");
        // A cased vocabulary keeps "C", which this uncased vocabulary only has as a letter.
        assert_eq!(first("google-bert/bert-base-cased", &files), "[UNK]");
        assert_eq!(first("/models/bert-base-cased/", &files), "[UNK]");
        std::fs::write(dir.path().join(TOKENIZER_CONFIG), r#"{"do_lower_case": true}"#)?;
        let files = find_in(dir.path()).unwrap();
        assert_eq!(first("google-bert/bert-base-cased", &files), "cat");
        Ok(())
    }

    #[test]
    fn configured_special_tokens_are_used_and_declared_ids_checked() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let reference = tiny_roberta_tokenizer()?;
        write_slow_tokenizer(&reference, dir.path())?;
        // "</s>" doubles as <s> here: the post-processor must follow the settings.
        std::fs::write(
            dir.path().join(SPECIAL_TOKENS_MAP),
            r#"{"cls_token": "</s>", "sep_token": "</s>", "mask_token": null}"#,
        )?;
        let built = find_in(dir.path()).unwrap().load("x")?;
        let ids = built.encode("me", true).unwrap().get_ids().to_vec();
        assert_eq!((ids[0], ids[ids.len() - 1]), (2, 2), "{ids:?}");

        std::fs::write(
            dir.path().join(TOKENIZER_CONFIG),
            r#"{"added_tokens_decoder": {"7": {"content": "<pad>", "special": true}}}"#,
        )?;
        let err = format!("{:#}", find_in(dir.path()).unwrap().load("x").unwrap_err());
        assert!(err.contains("\"<pad>\" as id 7") && err.contains("id 1"), "{err}");
        Ok(())
    }

    #[test]
    fn the_fast_form_is_preferred_and_incomplete_forms_are_not_taken() -> Result<()> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join(BPE_VOCAB), "{}")?;
        assert_eq!(find_in(dir.path()), None, "vocab.json alone is no BPE tokenizer");
        std::fs::write(dir.path().join(WORDPIECE_VOCAB), "[UNK]\n")?;
        let files = find_in(dir.path()).unwrap();
        assert_eq!(
            files.parts(),
            vec![("tokenizer.vocab", dir.path().join("vocab.txt").as_path())]
        );
        std::fs::write(dir.path().join(TOKENIZER_JSON), "{}")?;
        let json = dir.path().join(TOKENIZER_JSON);
        assert_eq!(find_in(dir.path()), Some(TokenizerFiles::Json(json)));
        Ok(())
    }
}
