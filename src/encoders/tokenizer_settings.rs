//! The settings a "slow" (Python) tokenizer keeps beside its vocabulary:
//! `tokenizer_config.json` (casing, prefix space, special tokens, `added_tokens_decoder`) and
//! `special_tokens_map.json` (special tokens). Read the way transformers reads them: the
//! special tokens map overrides the config, and a token may be a plain string or an object
//! with its matching flags (`lstrip`, `normalized`, ...).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde_json::{Map, Value};
use tokenizers::AddedToken;

/// The special-token roles of transformers' tokenizers, in the order they are added.
pub const ROLES: [&str; 7] =
    ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"];

/// A special token as a settings file gives it.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfiguredToken {
    /// Just the text: the tokenizer family decides the matching flags.
    Plain(String),
    /// Text and flags, as written.
    Full(AddedToken),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct TokenizerSettings {
    pub do_lower_case: Option<bool>,
    /// `None` (also when written as `null`): accents are stripped exactly when lowercasing.
    pub strip_accents: Option<bool>,
    pub tokenize_chinese_chars: Option<bool>,
    pub add_prefix_space: Option<bool>,
    /// Role (`cls_token`, ...) → token; absent roles take the family default.
    pub roles: BTreeMap<String, ConfiguredToken>,
    /// Roles set to `null`: the tokenizer has no such token, not even the family default.
    pub off: BTreeSet<String>,
    /// `additional_special_tokens`.
    pub additional: Vec<ConfiguredToken>,
    /// `added_tokens_decoder` (transformers ≥ 4.34): every added token with its id and flags.
    pub declared: BTreeMap<u32, AddedToken>,
}

impl TokenizerSettings {
    /// Reads whichever of the two files exist; later files override earlier ones.
    pub fn read(config: Option<&Path>, special_tokens_map: Option<&Path>) -> Result<Self> {
        let mut settings = Self::default();
        for path in [config, special_tokens_map].into_iter().flatten() {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let json: Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not valid JSON", path.display()))?;
            let Value::Object(fields) = json else {
                bail!("{} should hold a JSON object", path.display());
            };
            settings.merge(&fields).with_context(|| format!("in {}", path.display()))?;
        }
        Ok(settings)
    }

    pub fn explicitly_off(&self, role: &str) -> bool {
        self.off.contains(role)
    }

    fn merge(&mut self, fields: &Map<String, Value>) -> Result<()> {
        let flag = |key: &str| -> Result<Option<bool>> {
            match fields.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Bool(value)) => Ok(Some(*value)),
                Some(other) => bail!("`{key}` should be true, false or null, not {other}"),
            }
        };
        for (key, slot) in [
            ("do_lower_case", &mut self.do_lower_case),
            ("strip_accents", &mut self.strip_accents),
            ("tokenize_chinese_chars", &mut self.tokenize_chinese_chars),
            ("add_prefix_space", &mut self.add_prefix_space),
        ] {
            if fields.contains_key(key) {
                *slot = flag(key)?;
            }
        }
        for role in ROLES {
            match fields.get(role) {
                None => {}
                // An explicit null switches the role off (e.g. a tokenizer without <mask>).
                Some(Value::Null) => {
                    self.roles.remove(role);
                    self.off.insert(role.to_string());
                }
                Some(value) => {
                    let token = configured(value).with_context(|| format!("reading `{role}`"))?;
                    self.roles.insert(role.to_string(), token);
                    self.off.remove(role);
                }
            }
        }
        if let Some(value) = fields.get("additional_special_tokens") {
            let Value::Array(items) = value else {
                bail!("`additional_special_tokens` should be a list, not {value}");
            };
            self.additional = items
                .iter()
                .map(configured)
                .collect::<Result<_>>()
                .context("reading `additional_special_tokens`")?;
        }
        if let Some(value) = fields.get("added_tokens_decoder") {
            let Value::Object(entries) = value else {
                bail!("`added_tokens_decoder` should map ids to tokens, not {value}");
            };
            for (id, token) in entries {
                let parsed: u32 = id
                    .parse()
                    .with_context(|| format!("`added_tokens_decoder` key {id:?} is not an id"))?;
                let Value::Object(token) = token else {
                    bail!("`added_tokens_decoder` entry {id} should be an object, not {token}");
                };
                let full = full_token(token).with_context(|| format!("entry {id}"))?;
                self.declared.insert(parsed, full);
            }
        }
        Ok(())
    }
}

fn configured(value: &Value) -> Result<ConfiguredToken> {
    match value {
        Value::String(text) => Ok(ConfiguredToken::Plain(text.clone())),
        Value::Object(fields) => Ok(ConfiguredToken::Full(full_token(fields)?)),
        other => bail!("a token should be a string or an object with `content`, not {other}"),
    }
}

/// An object in the layout of Python's `AddedToken`; missing flags take its defaults
/// (only `special` differs: a token named in these files is special unless it says not).
fn full_token(fields: &Map<String, Value>) -> Result<AddedToken> {
    let Some(Value::String(content)) = fields.get("content") else {
        bail!("a token object needs a string `content`");
    };
    let flag = |key: &str, default: bool| -> Result<bool> {
        match fields.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Bool(value)) => Ok(*value),
            Some(other) => bail!("token {content:?}: `{key}` should be true or false, not {other}"),
        }
    };
    let special = flag("special", true)?;
    Ok(AddedToken::from(content.clone(), special)
        .single_word(flag("single_word", false)?)
        .lstrip(flag("lstrip", false)?)
        .rstrip(flag("rstrip", false)?)
        .normalized(flag("normalized", !special)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, json: &str) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, json).unwrap();
        path
    }

    #[test]
    fn the_special_tokens_map_overrides_the_config_and_keeps_flags() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let config = write(
            dir.path(),
            "tokenizer_config.json",
            r#"{"do_lower_case": false, "strip_accents": null, "unk_token": "[OLD]", "pad_token": "[P]",
                "cls_token": {"__type": "AddedToken", "content": "[CLS]", "lstrip": false},
                "added_tokens_decoder": {"3": {"content": "<x>", "special": false}}}"#,
        );
        let map = write(
            dir.path(),
            "special_tokens_map.json",
            r#"{"unk_token": "[UNK]", "pad_token": null, "mask_token": {"content": "<mask>", "lstrip": true,
                "normalized": true}, "additional_special_tokens": ["<e1>"]}"#,
        );
        let settings = TokenizerSettings::read(Some(&config), Some(&map))?;
        assert_eq!(settings.do_lower_case, Some(false));
        assert_eq!(settings.strip_accents, None);
        assert_eq!(settings.add_prefix_space, None);
        assert_eq!(settings.roles["unk_token"], ConfiguredToken::Plain("[UNK]".into()));
        assert!(!settings.roles.contains_key("pad_token") && settings.explicitly_off("pad_token"));
        assert!(!settings.explicitly_off("unk_token"));
        let ConfiguredToken::Full(mask) = &settings.roles["mask_token"] else {
            panic!("{:?}", settings.roles["mask_token"]);
        };
        assert!(mask.lstrip && mask.normalized && mask.special && !mask.rstrip);
        let ConfiguredToken::Full(cls) = &settings.roles["cls_token"] else { panic!() };
        assert!(!cls.normalized, "special tokens are not normalized unless they say so");
        assert_eq!(settings.additional, vec![ConfiguredToken::Plain("<e1>".into())]);
        let declared = &settings.declared[&3];
        assert_eq!((declared.content.as_str(), declared.special), ("<x>", false));
        assert!(declared.normalized);
        Ok(())
    }

    #[test]
    fn malformed_settings_name_the_file_and_the_key() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let bad = write(dir.path(), "tokenizer_config.json", r#"{"do_lower_case": "yes"}"#);
        let err = format!("{:#}", TokenizerSettings::read(Some(&bad), None).unwrap_err());
        assert!(err.contains("tokenizer_config.json") && err.contains("do_lower_case"), "{err}");
        let bad = write(dir.path(), "special_tokens_map.json", r#"{"sep_token": 5}"#);
        let err = format!("{:#}", TokenizerSettings::read(None, Some(&bad)).unwrap_err());
        assert!(err.contains("special_tokens_map.json") && err.contains("sep_token"), "{err}");
        Ok(())
    }
}
