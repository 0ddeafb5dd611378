//! A plan of runs: labelled configs derived from one base config, which the dashboard's
//! queue and `memescope bench --sweep` run one after another.
//!
//! Only the leave-one-out ablation sweep exists so far. Further ways of planning (a grid
//! over config keys, repeats over seeds) are meant to be more constructors of [`Plan`]
//! or transforms of one (each run of a plan times each seed), labelled in the same way.

mod label;
mod leave_one_out;

pub use label::{
    differences, run_label, seedless_label, short_value, value_at, Difference, BASE_LABEL,
};
pub use leave_one_out::{data_has_reasoning, leave_one_out_modules};

use crate::config::Config;

/// One run of a plan: the config it trains with and how tables and logs name it.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedRun {
    pub label: String,
    pub config: Config,
}

/// Runs in the order they are to be trained.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    pub runs: Vec<PlannedRun>,
}

impl Plan {
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
