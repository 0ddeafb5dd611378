//! Repeats over seeds: each run of a plan with `train.seed` = its seed, seed + 1, …

use anyhow::{bail, Context, Result};

use super::Plan;
use crate::config::Assignment;

impl Plan {
    /// Every run of the plan repeated `count` times with consecutive training seeds,
    /// starting at the run's own `train.seed`. One seed leaves the plan as it is.
    pub fn with_seeds(self, count: usize) -> Result<Plan> {
        match count {
            0 => bail!("--seeds must be at least 1"),
            1 => return Ok(self),
            _ => {}
        }
        let mut runs = Vec::new();
        for run in &self.runs {
            for offset in 0..count as u64 {
                let seed =
                    run.config.train.seed.checked_add(offset).and_then(|s| i64::try_from(s).ok());
                let seed = seed.context("train.seed + --seeds does not fit a TOML integer")?;
                let assignment = Assignment::new("train.seed", seed);
                runs.push(run.assigned(&format!("seed={seed}"), &[assignment])?);
            }
        }
        Ok(Plan { runs })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn base(seed: u64) -> Config {
        Config::from_toml_str(&format!(
            "[data]\nformat = \"axiom\"\ntrain = \"train.json\"\n\
             [text_encoder]\nmodel = \"m\"\n[train]\nseed = {seed}\n",
        ))
        .unwrap()
    }

    #[test]
    fn seeds_count_up_from_the_base_seed() {
        let plan = Plan::base(base(40)).with_seeds(3).unwrap();
        let seeds: Vec<u64> = plan.runs.iter().map(|run| run.config.train.seed).collect();
        assert_eq!(seeds, [40, 41, 42]);
        assert_eq!(plan.labels(), ["seed=40", "seed=41", "seed=42"]);
        assert_eq!(plan.runs[2].assignments[0].to_string(), "train.seed=42");
        assert!(Plan::base(base(1)).with_seeds(0).is_err());
        assert_eq!(Plan::base(base(1)).with_seeds(1).unwrap(), Plan::base(base(1)));
    }

    #[test]
    fn seeds_repeat_every_run_of_a_leave_one_out_sweep() {
        let sweep = Plan::leave_one_out(&base(7), false);
        let plan = sweep.clone().with_seeds(2).unwrap();
        assert_eq!(plan.len(), 2 * sweep.len());
        assert_eq!(plan.runs[3].label, "+lexical -image seed=8");
        assert_eq!(plan.runs[3].config.ablation, sweep.runs[1].config.ablation);
        for run in &plan.runs {
            assert_eq!(base(7).with_assignments(&run.assignments).unwrap(), run.config);
        }
    }
}
