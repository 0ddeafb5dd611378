//! The leave-one-out ablation sweep: the full model, then each main module removed in turn.
//! "Full" includes the lexical expert: it is opt-in for a single run, but a sweep that left
//! it out could not say what it contributes.

use std::path::Path;

use crate::config::{Ablation, Config};

/// The modules the sweep removes one at a time, in this order.
pub const SWEEP_MODULES: [&str; 6] =
    ["image", "ocr", "cross_attention", "moe", "contrastive", "lexical"];

/// The configs of the sweep, derived from `base` (its non-ablation settings are kept):
/// all modules on (the lexical expert included), each of `SWEEP_MODULES` off, and, when the data carries reasoning,
/// all on plus the figurative text.
pub fn leave_one_out(base: &Config, data_has_reasoning: bool) -> Vec<Config> {
    let all_on = Ablation { figurative: false, lexical: true, ..Ablation::default() };
    let mut ablations = vec![all_on];
    for module in SWEEP_MODULES {
        let mut ablation = all_on;
        ablation.set(module, false).expect("sweep modules are ablation switches");
        ablations.push(ablation);
    }
    if data_has_reasoning {
        ablations.push(Ablation { figurative: true, ..all_on });
    }
    ablations.into_iter().map(|ablation| Config { ablation, ..base.clone() }).collect()
}

/// The reasoning fields of the dataset records (see `crate::data::Reasoning`).
const REASONING_FIELDS: [&str; 4] =
    ["figurative_reasoning", "cause_effect", "figurative_understanding", "mental_state"];

/// Whether any record of the config's training or validation file has a non-empty
/// reasoning field. Unreadable files count as "no": the sweep then just skips the
/// figurative run, and the trainer reports the real problem when a run starts.
pub fn data_has_reasoning(config: &Config) -> bool {
    let files = std::iter::once(&config.data.train).chain(config.data.validation.as_ref());
    files.into_iter().any(|path| file_has_reasoning(path))
}

fn file_has_reasoning(path: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(path) else {
        return false;
    };
    let Ok(records) = serde_json::from_str::<Vec<serde_json::Value>>(&text) else {
        return false;
    };
    records.iter().any(|record| {
        REASONING_FIELDS.iter().any(|field| {
            record.get(field).and_then(|v| v.as_str()).is_some_and(|s| !s.trim().is_empty())
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn config() -> Config {
        Config::from_toml_str(
            "[data]\nformat = \"axiom\"\ntrain = \"train.json\"\n\
             [text_encoder]\nmodel = \"m\"\n[train]\nepochs = 3\n",
        )
        .unwrap()
    }

    #[test]
    fn sweep_is_all_on_then_each_module_off() {
        let mut base = config();
        base.ablation.moe = false; // toggles in the pane do not leak into the sweep
        let configs = leave_one_out(&base, false);
        let labels: Vec<String> = configs.iter().map(|c| c.ablation.short_label()).collect();
        let expected = [
            "+lexical",
            "+lexical -image",
            "+lexical -ocr",
            "+lexical -cross_attention",
            "+lexical -moe",
            "+lexical -contrastive",
            "all on",
        ];
        assert_eq!(labels, expected);
        assert!(configs.iter().all(|c| c.train.epochs == 3));
    }

    #[test]
    fn sweep_adds_figurative_when_the_data_has_reasoning() {
        let configs = leave_one_out(&config(), true);
        assert_eq!(configs.len(), 8);
        assert_eq!(configs[7].ablation.short_label(), "+figurative +lexical");
    }

    #[test]
    fn reasoning_is_detected_in_records() {
        let dir = tempfile::tempdir().unwrap();
        let with = dir.path().join("with.json");
        let without = dir.path().join("without.json");
        std::fs::write(&with, r#"[{"sample_id":"a","figurative_reasoning":"a metaphor"}]"#)
            .unwrap();
        std::fs::write(&without, r#"[{"sample_id":"a","figurative_reasoning":""}]"#).unwrap();
        let mut config = config();
        config.data.train = without.clone();
        assert!(!data_has_reasoning(&config));
        config.data.validation = Some(with);
        assert!(data_has_reasoning(&config));
    }
}
