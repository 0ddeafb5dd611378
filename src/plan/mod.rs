//! A plan of runs: labelled configs derived from one base config, which the dashboard's
//! queue, `memescope bench --sweep` and `memescope sweep` run (or hand to a scheduler).
//!
//! A plan starts as the base config alone ([`Plan::base`]) and each builder crosses every
//! run with its variants: a grid over config keys ([`Plan::with_grid`]), the leave-one-out
//! ablation sweep ([`Plan::with_leave_one_out`]) and repeats over seeds
//! ([`Plan::with_seeds`]). Each run keeps the `--set` assignments that make it from the
//! base, so that it can be written as a self-contained command line.

mod grid;
mod label;
mod leave_one_out;
mod seeds;

pub use grid::GridAxis;
pub use label::{
    differences, flattened_config, run_label, seedless_label, short_value, value_at, Difference,
    BASE_LABEL,
};
pub use leave_one_out::{data_has_reasoning, leave_one_out_modules};

use anyhow::Result;

use crate::config::{Assignment, Config};

/// One run of a plan: the config it trains with, how tables and logs name it, and the
/// assignments that turn the base config into it.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedRun {
    pub label: String,
    pub config: Config,
    /// In order; applied to the base config they give `config`.
    pub assignments: Vec<Assignment>,
}

impl PlannedRun {
    /// This run turned into one of its variants: `assignments` added, named by `label`
    /// after the run's own label (which the base run's replaces).
    fn variant(&self, label: &str, config: Config, assignments: &[Assignment]) -> PlannedRun {
        let label = if self.label == BASE_LABEL || self.label.is_empty() {
            label.to_string()
        } else if label.is_empty() {
            self.label.clone()
        } else {
            format!("{} {label}", self.label)
        };
        let assignments = self.assignments.iter().chain(assignments).cloned().collect();
        PlannedRun { label, config, assignments }
    }

    /// [`Self::variant`] with its config derived through the config's own checks.
    fn assigned(&self, label: &str, assignments: &[Assignment]) -> Result<PlannedRun> {
        let config = self.config.with_assignments(assignments)?;
        Ok(self.variant(label, config, assignments))
    }
}

/// Runs in the order they are to be trained.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    pub runs: Vec<PlannedRun>,
}

impl Plan {
    /// The base config alone, as one run labelled [`BASE_LABEL`].
    pub fn base(config: Config) -> Plan {
        Plan {
            runs: vec![PlannedRun {
                label: BASE_LABEL.to_string(),
                config,
                assignments: Vec::new(),
            }],
        }
    }

    pub fn len(&self) -> usize {
        self.runs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// The configs alone, in order.
    pub fn configs(&self) -> Vec<Config> {
        self.runs.iter().map(|run| run.config.clone()).collect()
    }

    pub fn labels(&self) -> Vec<&str> {
        self.runs.iter().map(|run| run.label.as_str()).collect()
    }
}

/// A minimal base config for the builders' tests.
#[cfg(test)]
fn test_base() -> Config {
    Config::from_toml_str(
        "[data]\nformat = \"axiom\"\ntrain = \"train.json\"\n\
         [text_encoder]\nmodel = \"m\"\n[train]\nepochs = 3\n",
    )
    .unwrap()
}
