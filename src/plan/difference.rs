//! How two configs differ, key by key: what tells the runs of a plan (or any set of run
//! directories) apart in a summary table.

use std::collections::BTreeMap;

use crate::config::Config;

/// Every value of `config` under its dotted key (`train.seed` → `42`), as TOML writes it.
pub fn flattened_config(config: &Config) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    // `to_toml_string` is the resolved config as run directories store it; it always parses.
    if let Ok(table) = config.to_toml_string().parse::<toml::Table>() {
        flatten("", &toml::Value::Table(table), &mut out);
    }
    out
}

/// The keys whose value in `other` differs from `base`, with `other`'s value (`unset` for a
/// key that `other` lacks), sorted by key.
pub fn config_difference(base: &Config, other: &Config) -> Vec<(String, String)> {
    let base = flattened_config(base);
    let other = flattened_config(other);
    let mut keys: Vec<&String> = base.keys().chain(other.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|key| base.get(*key) != other.get(*key))
        .map(|key| (key.clone(), other.get(key).cloned().unwrap_or_else(|| "unset".into())))
        .collect()
}

fn flatten(prefix: &str, value: &toml::Value, out: &mut BTreeMap<String, String>) {
    match value {
        toml::Value::Table(table) => {
            for (key, value) in table {
                let key = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
                flatten(&key, value, out);
            }
        }
        toml::Value::String(text) => {
            out.insert(prefix.to_string(), text.clone());
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_changed_keys_differ() {
        let base = Config::from_toml_str(
            "[data]\nformat = \"axiom\"\ntrain = \"t.json\"\n[text_encoder]\nmodel = \"m\"\n",
        )
        .unwrap();
        let mut other = base.clone();
        other.train.seed = 7;
        other.ablation.moe = false;
        assert_eq!(config_difference(&base, &base), vec![]);
        assert_eq!(
            config_difference(&base, &other),
            vec![("ablation.moe".into(), "false".into()), ("train.seed".into(), "7".into())]
        );
        assert_eq!(flattened_config(&other)["train.seed"], "7");
    }
}
