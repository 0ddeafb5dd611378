//! The leave-one-out ablation sweep: the full model, then each main module removed in turn.
//! "Full" includes opt-in modules that the sweep removes (the lexical expert): they are
//! off for a single run, but a sweep that left them out could not say what they contribute.
//! Which modules those are is declared with the switches (`config::ablation_switches!`).

use super::Plan;
use crate::config::{Ablation, Assignment, Config, SWITCHES};

/// Whether any record of the config's training or validation file has figurative reasoning
/// (which adds a run to the sweep). Unreadable files count as "no": the sweep then just
/// skips that run, and the trainer reports the real problem when a run starts.
pub fn data_has_reasoning(config: &Config) -> bool {
    let files = std::iter::once(&config.data.train).chain(config.data.validation.as_ref());
    files.into_iter().any(|path| crate::data::file_has_reasoning(path))
}

/// The switches the sweep removes one at a time, in display order.
pub fn leave_one_out_modules() -> impl Iterator<Item = &'static str> {
    SWITCHES.iter().filter(|switch| switch.leave_one_out).map(|switch| switch.name)
}

impl Plan {
    /// The sweep derived from `base` (its non-ablation settings are kept): every swept
    /// module on, each of them off in turn, and, when the data carries reasoning, all on
    /// plus the figurative text. Switches the sweep does not remove keep their defaults.
    pub fn leave_one_out(base: &Config, data_has_reasoning: bool) -> Plan {
        Plan::base(base.clone()).with_leave_one_out(data_has_reasoning)
    }

    /// Every run of the plan crossed with the leave-one-out sweep over its config. Each
    /// variant's assignments set the switches whose value differs from the run's.
    pub fn with_leave_one_out(self, data_has_reasoning: bool) -> Plan {
        let ablations = sweep_ablations(data_has_reasoning);
        let runs = self
            .runs
            .iter()
            .flat_map(|run| {
                ablations.iter().map(move |&ablation| {
                    let assignments: Vec<Assignment> = SWITCHES
                        .iter()
                        .filter(|switch| {
                            run.config.ablation.get(switch.name) != ablation.get(switch.name)
                        })
                        .map(|switch| {
                            let on = ablation.get(switch.name).expect("a declared switch");
                            Assignment::new(&format!("ablation.{}", switch.name), on)
                        })
                        .collect();
                    let config = Config { ablation, ..run.config.clone() };
                    run.variant(&ablation.short_label(), config, &assignments)
                })
            })
            .collect();
        Plan { runs }
    }
}

/// The ablations of the sweep, in order.
fn sweep_ablations(data_has_reasoning: bool) -> Vec<Ablation> {
    let mut full = Ablation::default();
    for module in leave_one_out_modules() {
        full.set(module, true).expect("swept modules are ablation switches");
    }
    let mut ablations = vec![full];
    for module in leave_one_out_modules() {
        let mut ablation = full;
        ablation.set(module, false).expect("swept modules are ablation switches");
        ablations.push(ablation);
    }
    if data_has_reasoning {
        ablations.push(Ablation { figurative: true, ..full });
    }
    ablations
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::plan::test_base as config;

    #[test]
    fn sweep_is_all_on_then_each_module_off() {
        let mut base = config();
        base.ablation.moe = false; // toggles in the pane do not leak into the sweep
        let plan = Plan::leave_one_out(&base, false);
        let expected = [
            "+lexical",
            "+lexical -image",
            "+lexical -ocr",
            "+lexical -cross_attention",
            "+lexical -moe",
            "+lexical -contrastive",
            "all on",
        ];
        assert_eq!(plan.labels(), expected);
        assert!(plan.runs.iter().all(|run| run.config.train.epochs == 3));
        assert!(plan.runs.iter().all(|run| run.label == run.config.ablation.short_label()));
    }

    /// Holds for any set of declared switches: the full run has every swept module on,
    /// and each swept module is off in exactly one run, which differs from full by it alone.
    #[test]
    fn each_swept_module_is_removed_alone_once() {
        let plan = Plan::leave_one_out(&config(), false);
        let full = plan.runs[0].config.ablation;
        let modules: Vec<&str> = leave_one_out_modules().collect();
        assert_eq!(plan.len(), modules.len() + 1);
        for (run, module) in plan.runs[1..].iter().zip(&modules) {
            assert_eq!(full.get(module), Some(true));
            let mut expected = full;
            expected.set(module, false).unwrap();
            assert_eq!(run.config.ablation, expected, "{module}");
        }
        assert!(!full.figurative);
    }

    #[test]
    fn sweep_adds_figurative_when_the_data_has_reasoning() {
        let plan = Plan::leave_one_out(&config(), true);
        assert_eq!(plan.len(), 8);
        assert_eq!(plan.runs[7].label, "+figurative +lexical");
    }

    #[test]
    fn reasoning_is_looked_up_in_the_training_and_validation_files() {
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

    /// The assignments of each run rebuild its config from the base, as its command will.
    #[test]
    fn assignments_rebuild_each_run_from_the_base() {
        let mut base = config();
        base.ablation.moe = false;
        let plan = Plan::leave_one_out(&base, true);
        for run in &plan.runs {
            assert_eq!(
                base.with_assignments(&run.assignments).unwrap(),
                run.config,
                "{}",
                run.label
            );
        }
        let full = &plan.runs[0].assignments;
        let full: Vec<String> = full.iter().map(ToString::to_string).collect();
        assert_eq!(full, ["ablation.moe=true", "ablation.lexical=true"]);
    }
}
