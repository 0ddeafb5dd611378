//! The report's Markdown summary: one row per run with the settings that tell the runs
//! apart and their validation F1s, mean ± std over runs that differ only by `train.seed`,
//! per-class F1, the figures, and what could not be read.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::loaded::ReportedRun;
use crate::config::Config;
use crate::metrics::mean_std;
use crate::plan::{differences, flattened_config};

/// The key that repeats of one setup differ by.
const SEED: &str = "train.seed";

/// The summary of `runs`, linking `figures` (file names relative to the summary).
pub fn summary_markdown(runs: &[ReportedRun], figures: &[(String, String)]) -> String {
    let settings: Vec<Option<BTreeMap<String, String>>> =
        runs.iter().map(|run| run.config.as_ref().map(trained_settings)).collect();
    let configs: Vec<Option<&Config>> = runs.iter().map(|run| run.config.as_ref()).collect();
    let varying = varying_keys(&configs);
    let mut md = String::from("# memescope report\n\n");
    let _ = writeln!(
        md,
        "Validation scores of each run's best epoch (chosen by the harmonic mean of macro- and \
         weighted-F1). *Differs in* lists the run's values of the config keys that are not \
         the same in all {} runs.\n",
        runs.len()
    );
    md.push_str(
        "| run | differs in | best epoch | epochs run | macro-F1 | weighted-F1 | status |\n",
    );
    md.push_str("|---|---|---|---|---|---|---|\n");
    for (run, settings) in runs.iter().zip(&settings) {
        let differs = match settings {
            Some(settings) => describe(&varying, settings, &[]),
            None => "(config unreadable)".into(),
        };
        let cells = match &run.report {
            Some(r) => format!(
                "{} | {} | {:.4} | {:.4} | {}",
                r.best_epoch,
                r.epochs_run,
                r.macro_f1,
                r.weighted_f1,
                r.status.label()
            ),
            None => "– | – | – | – | no completed epoch".into(),
        };
        let _ = writeln!(md, "| {} | {differs} | {cells} |", escape(&run.name));
    }
    seed_groups_section(&mut md, runs, &settings, &varying);
    class_section(&mut md, runs);
    if !figures.is_empty() {
        md.push_str("\n## Figures\n\n");
        for (title, file) in figures {
            let _ = writeln!(md, "- [{title}]({file})");
        }
    }
    let notes: Vec<&String> = runs.iter().flat_map(|run| &run.notes).collect();
    if !notes.is_empty() {
        md.push_str("\n## Not available\n\n");
        for note in notes {
            let _ = writeln!(md, "- {}", escape(note));
        }
    }
    md
}

/// The flattened config (without the keys that only say where files live), as text.
fn trained_settings(config: &Config) -> BTreeMap<String, String> {
    let text = |value: toml::Value| match value {
        toml::Value::String(text) => text,
        other => other.to_string(),
    };
    flattened_config(config).into_iter().map(|(key, value)| (key, text(value))).collect()
}

/// The keys (outside `paths`) whose value is not the same in every readable config.
fn varying_keys(configs: &[Option<&Config>]) -> Vec<String> {
    let known: Vec<&Config> = configs.iter().flatten().copied().collect();
    let Some(first) = known.first() else { return Vec::new() };
    let mut keys: Vec<String> = known
        .iter()
        .flat_map(|config| differences(first, config))
        .map(|difference| difference.key)
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// `key=value` for each of `keys` except `skip`, or `–` when there is none.
fn describe(keys: &[String], settings: &BTreeMap<String, String>, skip: &[&str]) -> String {
    let parts: Vec<String> = keys
        .iter()
        .filter(|key| !skip.contains(&key.as_str()))
        .map(|key| {
            let value = settings.get(key).map_or("unset", String::as_str);
            format!("`{key}={value}`")
        })
        .collect();
    if parts.is_empty() {
        "–".into()
    } else {
        escape(&parts.join(", "))
    }
}

/// Mean ± sample standard deviation over each group of two or more runs whose configs are
/// the same but for `train.seed`.
fn seed_groups_section(
    md: &mut String,
    runs: &[ReportedRun],
    settings: &[Option<BTreeMap<String, String>>],
    varying: &[String],
) {
    let mut groups: Vec<(BTreeMap<String, String>, Vec<usize>)> = Vec::new();
    for (i, settings) in settings.iter().enumerate() {
        let (Some(settings), Some(_)) = (settings, &runs[i].report) else { continue };
        let mut without_seed = settings.clone();
        without_seed.remove(SEED);
        match groups.iter_mut().find(|(key, _)| *key == without_seed) {
            Some((_, members)) => members.push(i),
            None => groups.push((without_seed, vec![i])),
        }
    }
    groups.retain(|(_, members)| members.len() > 1);
    if groups.is_empty() {
        return;
    }
    md.push_str("\n## Over seeds\n\n");
    md.push_str(
        "Runs that differ only by `train.seed`: mean ± sample standard deviation of the \
         best epochs' scores.\n\n",
    );
    md.push_str("| differs in | runs | seeds | macro-F1 | weighted-F1 |\n|---|---|---|---|---|\n");
    for (shared, members) in groups {
        let seeds: Vec<String> = members
            .iter()
            .map(|&i| settings[i].as_ref().and_then(|s| s.get(SEED).cloned()).unwrap_or_default())
            .collect();
        let score = |f: fn(&crate::runs::Report) -> f64| {
            let values: Vec<f64> =
                members.iter().filter_map(|&i| runs[i].report.as_ref().map(f)).collect();
            let (mean, std) = mean_std(&values);
            format!("{mean:.4} ± {std:.4}")
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} |",
            describe(varying, &shared, &[SEED]),
            members.len(),
            seeds.join(", "),
            score(|r| r.macro_f1),
            score(|r| r.weighted_f1),
        );
    }
}

/// Each class's F1 in each run, the runs as columns.
fn class_section(md: &mut String, runs: &[ReportedRun]) {
    let reported: Vec<&ReportedRun> = runs.iter().filter(|run| run.report.is_some()).collect();
    let Some(first) = reported.first().and_then(|run| run.report.as_ref()) else { return };
    md.push_str("\n## Per-class F1\n\n| class |");
    for run in &reported {
        let _ = write!(md, " {} |", escape(&run.name));
    }
    md.push_str("\n|---|");
    md.push_str(&"---|".repeat(reported.len()));
    md.push('\n');
    for label in &first.labels {
        let _ = write!(md, "| {} |", escape(label));
        for run in &reported {
            let f1 =
                run.report.as_ref().and_then(|r| r.per_class.iter().find(|c| &c.label == label));
            match f1 {
                Some(c) => {
                    let _ = write!(md, " {:.4} |", c.f1);
                }
                None => md.push_str(" – |"),
            }
        }
        md.push('\n');
    }
}

/// A table cell's text: `|` would end the cell.
fn escape(text: &str) -> String {
    text.replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_keys_that_differ_somewhere_vary() {
        let a = Config::from_toml_str(
            "[data]\nformat = \"axiom\"\ntrain = \"t.json\"\n[text_encoder]\nmodel = \"m\"\n",
        )
        .unwrap();
        let mut b = a.clone();
        b.train.seed = 2;
        b.paths.runs = "elsewhere".into();
        assert_eq!(varying_keys(&[Some(&a), Some(&a), None, Some(&b)]), ["train.seed"]);
        let settings = trained_settings(&b);
        assert_eq!(describe(&["train.seed".into()], &settings, &[]), "`train.seed=2`");
        assert_eq!(describe(&["train.seed".into()], &settings, &[SEED]), "–");
    }
}
