//! The next run's setup, as the Ablations pane edits it: the base config with the switches
//! toggled, values changed (checked by the config's own `--set` code) and a number of
//! seeds to repeat it with. No drawing here.

use anyhow::{bail, Result};

use crate::config::{Ablation, Config};
use crate::plan::{value_at, Plan};

/// The keys people change between runs, in display order. Any of them is validated like
/// `--set section.key=value`.
pub const KNOBS: &[&str] = &[
    "train.lr",
    "train.encoder_lr",
    "train.epochs",
    "train.batch_size",
    "train.seed",
    "text_encoder.model",
    "text_encoder.finetune_layers",
    "model.ensemble",
    "model.experts",
    "model.fusion_dim",
    "model.dropout",
];

#[derive(Debug, Clone, Default)]
pub struct NextRun {
    /// The config runs start from; `None` when watching (nothing can start).
    base: Option<Box<Config>>,
    pub ablation: Ablation,
    /// Accepted `key=value` assignments, at most one per key, in the order made.
    overrides: Vec<(String, String)>,
    /// How many runs to start, with seeds `train.seed`, `train.seed + 1`, …
    pub seeds: usize,
}

impl NextRun {
    pub fn new(base: Config) -> Self {
        Self {
            ablation: base.ablation,
            base: Some(Box::new(base)),
            overrides: Vec::new(),
            seeds: 1,
        }
    }

    /// The setup of a read-only dashboard.
    pub fn watching() -> Self {
        Self { seeds: 1, ..Self::default() }
    }

    pub fn base(&self) -> Option<&Config> {
        self.base.as_deref()
    }

    fn assignments(&self) -> Vec<String> {
        self.overrides.iter().map(|(key, value)| format!("{key}={value}")).collect()
    }

    fn build(&self, assignments: &[String]) -> Result<Config> {
        let Some(base) = &self.base else {
            bail!("watching a run: runs cannot be started here");
        };
        let config = Config { ablation: self.ablation, ..(**base).clone() };
        config.with_overrides(assignments)
    }

    /// The config of the next run (the first seed).
    pub fn config(&self) -> Result<Config> {
        self.build(&self.assignments())
    }

    /// The configs to start: one per seed (the plan's seed repeats, as `sweep --seeds`).
    pub fn configs(&self) -> Result<Vec<Config>> {
        Ok(Plan::base(self.config()?).with_seeds(self.seeds.max(1))?.configs())
    }

    /// Sets `key` to `raw` (read as `--set` reads it) when the resulting config is valid;
    /// otherwise keeps the setup and returns the config's own message.
    pub fn set_value(&mut self, key: &str, raw: &str) -> Result<()> {
        let mut overrides = self.overrides.clone();
        overrides.retain(|(k, _)| k != key);
        overrides.push((key.to_string(), raw.trim().to_string()));
        let assignments: Vec<String> =
            overrides.iter().map(|(key, value)| format!("{key}={value}")).collect();
        self.build(&assignments)?;
        self.overrides = overrides;
        Ok(())
    }

    /// Sets the number of seeds from text typed in the pane.
    pub fn set_seeds(&mut self, raw: &str) -> Result<()> {
        match raw.trim().parse::<usize>() {
            Ok(n @ 1..=100) => {
                self.seeds = n;
                Ok(())
            }
            _ => bail!("the number of seeds must be a whole number from 1 to 100, got `{raw}`"),
        }
    }

    /// The current value of `key` in the next run, as text to edit (strings unquoted).
    pub fn value_text(&self, key: &str) -> String {
        match self.config().ok().and_then(|config| value_at(&config, key)) {
            Some(toml::Value::String(text)) => text,
            Some(value @ toml::Value::Float(_)) => crate::plan::short_value(&value),
            Some(value) => value.to_string(),
            None => "—".to_string(),
        }
    }

    /// Whether `key` was changed from the base.
    pub fn is_changed(&self, key: &str) -> bool {
        match (self.base(), self.config()) {
            (Some(base), Ok(next)) => value_at(base, key) != value_at(&next, key),
            _ => false,
        }
    }

    /// The next run's label against the base (`-moe lr=3e-4`), with the seed count.
    pub fn label(&self) -> String {
        let label = match (self.base(), self.config()) {
            (Some(base), Ok(next)) => crate::plan::run_label(base, &next),
            _ => self.ablation.short_label(),
        };
        match self.seeds {
            0 | 1 => label,
            n => format!("{label} ×{n} seeds"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::tests::fixture::config;

    #[test]
    fn every_knob_is_a_key_of_the_config() {
        let next = NextRun::new(config());
        for key in KNOBS {
            assert_ne!(next.value_text(key), "—", "{key}");
        }
    }

    #[test]
    fn a_valid_value_is_kept_and_an_invalid_one_refused_with_the_config_message() {
        let mut next = NextRun::new(config());
        next.set_value("train.lr", "3e-4").unwrap();
        assert_eq!(next.config().unwrap().train.lr, 3e-4);
        assert!(next.is_changed("train.lr") && !next.is_changed("train.epochs"));
        let err = next.set_value("model.fusion_dim", "250").unwrap_err();
        assert!(format!("{err:#}").contains("divisible by model.heads"), "{err:#}");
        assert_eq!(next.config().unwrap().model.fusion_dim, 256, "the refused value is dropped");
        assert_eq!(next.label(), "lr=3e-4");
    }

    #[test]
    fn seeds_repeat_the_run_with_consecutive_seeds() {
        let mut next = NextRun::new(config());
        next.set_value("train.seed", "7").unwrap();
        next.set_seeds("3").unwrap();
        let seeds: Vec<u64> = next.configs().unwrap().iter().map(|c| c.train.seed).collect();
        assert_eq!(seeds, [7, 8, 9]);
        assert!(next.set_seeds("0").is_err() && next.set_seeds("two").is_err());
        assert_eq!(next.label(), "seed=7 ×3 seeds");
    }
}
