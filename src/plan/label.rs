//! A run's label: its difference from the base config, e.g. `-moe lr=0.0003 seed=7`.
//!
//! Both configs are flattened to `section.key` values and compared key by key, so any
//! knob (not only the ablation switches) shows up, and two runs that differ by a value
//! never share a label. Ablation switches read `+name` / `-name`; keys of `train` and
//! `model` drop their section (their names are unique and short); other keys keep it
//! (`text_encoder.layers` and `vision_encoder.layers` would clash). Where runs are stored
//! (`paths.*`) is not a difference between runs.

use std::collections::BTreeMap;

use crate::config::{Config, SWITCHES};

/// The label of a run identical to the base.
pub const BASE_LABEL: &str = "base";
/// The key that repeats of one setup differ by.
const SEED_KEY: &str = "train.seed";

/// `config` flattened to dotted keys (`train.lr`), without `paths.*`: every setting a run
/// trains with, as its run directory's `config.toml` stores it.
pub fn flattened_config(config: &Config) -> BTreeMap<String, toml::Value> {
    let value = toml::Value::try_from(config).expect("a config always serialises");
    let mut flat = BTreeMap::new();
    flatten_into(&mut flat, "", &value);
    flat.retain(|key, _| !key.starts_with("paths."));
    flat
}

fn flatten_into(flat: &mut BTreeMap<String, toml::Value>, prefix: &str, value: &toml::Value) {
    match value {
        toml::Value::Table(table) => {
            for (key, inner) in table {
                let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
                flatten_into(flat, &path, inner);
            }
        }
        other => {
            flat.insert(prefix.to_string(), other.clone());
        }
    }
}

/// The value of one dotted key (`train.lr`) of `config`; `None` when unset or unknown.
pub fn value_at(config: &Config, key: &str) -> Option<toml::Value> {
    flattened_config(config).remove(key)
}

/// One key whose value differs from the base: `None` where the config leaves it unset.
#[derive(Debug, Clone, PartialEq)]
pub struct Difference {
    pub key: String,
    pub base: Option<toml::Value>,
    pub run: Option<toml::Value>,
}

impl Difference {
    /// `-moe`, `+lexical`, `lr=0.0003`, `text_encoder.model=all-mpnet-base-v2`.
    pub fn label(&self) -> String {
        if let Some(switch) = self.key.strip_prefix("ablation.") {
            if let Some(toml::Value::Boolean(on)) = self.run {
                return format!("{}{switch}", if on { '+' } else { '-' });
            }
        }
        let key = ["train.", "model."]
            .iter()
            .find_map(|section| self.key.strip_prefix(section))
            .unwrap_or(&self.key);
        format!("{key}={}", self.run.as_ref().map_or("none".to_string(), short_value))
    }
}

/// A value as short as it stays unambiguous: `3e-4` rather than `0.0003`, strings unquoted
/// and local model folders by their last component.
pub fn short_value(value: &toml::Value) -> String {
    match value {
        toml::Value::Float(x) => {
            // f32 settings (dropout, temperature) reach TOML widened to f64, 0.1 as
            // 0.10000000149011612: shown as the f32 they are.
            let single = *x as f32;
            let (plain, scientific) = if f64::from(single) == *x {
                (format!("{single}"), format!("{single:e}"))
            } else {
                (format!("{x}"), format!("{x:e}"))
            };
            if scientific.len() < plain.len() {
                scientific
            } else {
                plain
            }
        }
        toml::Value::String(text) => {
            let trimmed = text.trim_end_matches('/');
            let last = trimmed.rsplit('/').next().unwrap_or(trimmed);
            if trimmed.starts_with('/') && !last.is_empty() {
                last.to_string()
            } else {
                text.clone()
            }
        }
        toml::Value::Array(items) => {
            let items: Vec<String> = items.iter().map(short_value).collect();
            format!("[{}]", items.join(","))
        }
        other => other.to_string(),
    }
}

/// Every key whose value differs between `base` and `run`: the ablation switches first, in
/// display order, then the other keys in alphabetical order.
pub fn differences(base: &Config, run: &Config) -> Vec<Difference> {
    let (base, run) = (flattened_config(base), flattened_config(run));
    let mut keys: Vec<&String> = base.keys().chain(run.keys()).collect();
    keys.sort();
    keys.dedup();
    let switch_rank = |key: &str| {
        key.strip_prefix("ablation.")
            .and_then(|name| SWITCHES.iter().position(|switch| switch.name == name))
    };
    keys.sort_by_key(|key| (switch_rank(key).is_none(), switch_rank(key), (*key).clone()));
    keys.into_iter()
        .filter(|key| base.get(*key) != run.get(*key))
        .map(|key| Difference {
            key: key.clone(),
            base: base.get(key).cloned(),
            run: run.get(key).cloned(),
        })
        .collect()
}

/// The run's label: its differences from `base`, or [`BASE_LABEL`] when there are none.
pub fn run_label(base: &Config, run: &Config) -> String {
    join(differences(base, run).iter())
}

/// The label without the seed: runs that are repeats of one setup share it.
pub fn seedless_label(base: &Config, run: &Config) -> String {
    join(differences(base, run).iter().filter(|d| d.key != SEED_KEY))
}

fn join<'a>(differences: impl Iterator<Item = &'a Difference>) -> String {
    let parts: Vec<String> = differences.map(Difference::label).collect();
    if parts.is_empty() {
        BASE_LABEL.to_string()
    } else {
        parts.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Config {
        Config::from_toml_str(
            "[data]\nformat = \"axiom\"\ntrain = \"train.json\"\n\
             [text_encoder]\nmodel = \"/work/models/all-MiniLM-L6-v2\"\n[train]\nepochs = 3\n",
        )
        .unwrap()
    }

    #[test]
    fn single_precision_settings_show_as_written() {
        // model.dropout is an f32: 0.1 reaches TOML as 0.10000000149011612.
        assert_eq!(short_value(&toml::Value::Float(f64::from(0.1f32))), "0.1");
        assert_eq!(short_value(&toml::Value::Float(0.1)), "0.1");
        assert_eq!(short_value(&toml::Value::Float(3e-4)), "3e-4");
    }

    #[test]
    fn identical_configs_are_the_base() {
        assert_eq!(run_label(&base(), &base()), "base");
    }

    #[test]
    fn switches_come_first_then_values() {
        let mut run = base();
        run.ablation.moe = false;
        run.ablation.lexical = true;
        run.train.lr = 3e-4;
        run.train.seed = 7;
        assert_eq!(run_label(&base(), &run), "-moe +lexical lr=3e-4 seed=7");
        assert_eq!(seedless_label(&base(), &run), "-moe +lexical lr=3e-4");
    }

    #[test]
    fn runs_differing_only_by_a_value_get_different_labels() {
        let (mut a, mut b) = (base(), base());
        a.train.lr = 1e-3;
        b.train.lr = 5e-4;
        assert_ne!(run_label(&base(), &a), run_label(&base(), &b));
        assert_eq!(run_label(&base(), &b), "lr=5e-4");
    }

    #[test]
    fn keys_outside_train_and_model_keep_their_section() {
        let mut run = base();
        run.text_encoder.layers = 2;
        run.text_encoder.model = "/work/models/all-mpnet-base-v2".to_string();
        run.model.experts = 8;
        run.paths.runs = "elsewhere".into();
        assert_eq!(
            run_label(&base(), &run),
            "experts=8 text_encoder.layers=2 text_encoder.model=all-mpnet-base-v2"
        );
    }

    #[test]
    fn an_unset_optional_reads_none() {
        let mut run = base();
        run.data.validation = Some("val.json".into());
        assert_eq!(run_label(&base(), &run), "data.validation=val.json");
        assert_eq!(run_label(&run, &base()), "data.validation=none");
    }
}
