//! The experiment workbench on disk: a run's `predictions.jsonl` and `metrics.csv`,
//! `eval --predictions`, and `memescope report` over runs old and new.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use memescope::config::Config;
use memescope::data::AXIOM_LABELS;
use memescope::events::VecSink;
use memescope::runs::{read_predictions, EpochRow, RunDir};
use memescope::train::{self, StopFlag};

const EPOCHS: usize = 3;

/// Two finished tiny runs on the same synthetic AxiOM data: the default, and one with the
/// mixture of experts off.
struct TwoRuns {
    _dir: tempfile::TempDir,
    data: common::Synthetic,
    moe: PathBuf,
    no_moe: PathBuf,
}

/// Synthetic AxiOM data (`per_class` memes of each label from `seed`) and the config of a
/// tiny run over it, all in `dir`.
fn synthetic(dir: &Path, per_class: usize, seed: u64) -> (common::Synthetic, Config) {
    let data = common::axiom(&dir.join("data"), per_class, seed);
    let (bert, clip) = common::tiny_encoders(dir);
    let config =
        Config::from_toml_str(&common::config_toml(&data, "axiom", &bert, &clip, dir)).unwrap();
    (data, config)
}

fn two_runs() -> TwoRuns {
    let dir = tempfile::tempdir().unwrap();
    let (data, mut config) = synthetic(dir.path(), 8, 5);
    config.train.epochs = EPOCHS;
    let train = |config: Config| {
        train::run(config, &mut VecSink::default(), &StopFlag::default()).unwrap().run_dir
    };
    let moe = train(config.clone());
    config.ablation.moe = false;
    let no_moe = train(config);
    TwoRuns { _dir: dir, data, moe, no_moe }
}

/// The `sample_id`s of a data file, in order.
fn sample_ids(path: &Path) -> Vec<String> {
    let records: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    records.iter().map(|r| r["sample_id"].as_str().unwrap().to_string()).collect()
}

fn true_label(path: &Path) -> std::collections::BTreeMap<String, String> {
    let records: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    records
        .iter()
        .map(|r| {
            let id = r["sample_id"].as_str().unwrap().to_string();
            (id, r["meme_anxiety_category"].as_str().unwrap().to_string())
        })
        .collect()
}

#[test]
fn runs_write_predictions_and_metrics_and_report_draws_them() {
    let runs = two_runs();
    let truth = true_label(&runs.data.validation);

    // predictions.jsonl: one line per validation sample, in the file's order, with the
    // truth, a probability per class summing to 1, and the most probable class predicted.
    let run = RunDir::open(&runs.moe).unwrap();
    let predictions = run.read_predictions().unwrap().expect("predictions.jsonl");
    let text = std::fs::read_to_string(run.predictions()).unwrap();
    assert_eq!(text.lines().count(), predictions.len());
    let ids: Vec<String> = predictions.iter().map(|p| p.sample_id.clone()).collect();
    assert_eq!(ids, sample_ids(&runs.data.validation));
    for p in &predictions {
        assert_eq!(p.truth, vec![truth[&p.sample_id].clone()]);
        assert_eq!(p.probabilities.len(), AXIOM_LABELS.len());
        let sum: f32 = p.probabilities.values().sum();
        assert!((sum - 1.0).abs() < 1e-4, "{}: probabilities sum to {sum}", p.sample_id);
        let most = p.probabilities.iter().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0;
        assert_eq!(p.predicted, vec![most.clone()]);
    }
    // ... and they are the best epoch's: they score what report.json says.
    let report = run.read_report().unwrap().unwrap();
    let correct = predictions.iter().filter(|p| p.predicted == p.truth).count();
    let accuracy = correct as f64 / predictions.len() as f64;
    assert!((accuracy - report.metrics.accuracy).abs() < 1e-12);

    // `eval --predictions` on the validation file writes the same predictions.
    let evaluated = memescope::train::evaluate_runs(
        std::slice::from_ref(&runs.moe),
        &runs.data.validation,
        Some(&runs.data.images),
    )
    .unwrap();
    assert_eq!(evaluated.predictions.len(), predictions.len());
    for (e, p) in evaluated.predictions.iter().zip(&predictions) {
        assert_eq!((&e.sample_id, &e.truth, &e.predicted), (&p.sample_id, &p.truth, &p.predicted));
        for (label, probability) in &p.probabilities {
            assert!((e.probabilities[label] - probability).abs() < 1e-4);
        }
    }
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("eval.jsonl");
    let eval = Command::new(env!("CARGO_BIN_EXE_memescope"))
        .arg("eval")
        .arg("--run")
        .arg(&runs.moe)
        .arg("--data")
        .arg(&runs.data.validation)
        .arg("--images")
        .arg(&runs.data.images)
        .arg("--predictions")
        .arg(&file)
        .output()
        .unwrap();
    assert!(eval.status.success(), "{}", String::from_utf8_lossy(&eval.stderr));
    assert_eq!(read_predictions(&file).unwrap(), evaluated.predictions);

    // metrics.csv: the header and one row per epoch, agreeing with the event log.
    let csv = std::fs::read_to_string(run.metrics_csv()).unwrap();
    let header = csv.lines().next().unwrap();
    assert!(header.starts_with("epoch,train_loss,val_loss,macro_f1,weighted_f1,accuracy,f1_"));
    assert!(header.ends_with(",lr,seconds"), "{header}");
    assert_eq!(csv.lines().count(), 1 + EPOCHS);
    let rows = run.read_epochs().unwrap();
    assert_eq!(rows.iter().map(|r| r.epoch).collect::<Vec<_>>(), [1, 2, 3]);
    let from_events = EpochRow::from_events(&run.read_events().unwrap());
    for (row, logged) in rows.iter().zip(&from_events) {
        assert_eq!(row.macro_f1, logged.macro_f1);
        assert_eq!(row.class_f1, logged.class_f1);
        assert_eq!(row.lr, logged.lr, "the csv's lr is the epoch's last step's");
        assert!(row.lr.unwrap() > 0.0);
    }
    assert_eq!(rows.last().unwrap().class_f1.len(), AXIOM_LABELS.len());

    // `memescope report` over both runs.
    let report_dir = out.path().join("report");
    let output = Command::new(env!("CARGO_BIN_EXE_memescope"))
        .arg("report")
        .args([&runs.moe, &runs.no_moe])
        .arg("--out")
        .arg(&report_dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let listed: Vec<PathBuf> =
        String::from_utf8(output.stdout).unwrap().lines().map(PathBuf::from).collect();
    let moe_id = run.id.clone();
    let no_moe_id = RunDir::open(&runs.no_moe).unwrap().id;
    let mut expected = vec![
        "loss".to_string(),
        "class-f1".to_string(),
        format!("confusion-{moe_id}"),
        format!("gates-{moe_id}"),
        format!("confusion-{no_moe_id}"),
    ];
    expected = expected.iter().flat_map(|s| [format!("{s}.png"), format!("{s}.svg")]).collect();
    expected.push("summary.md".into());
    let names: Vec<String> =
        listed.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(names, expected, "no gate figure for the run without experts");
    for path in &listed {
        assert!(path.is_file(), "{} listed but missing", path.display());
    }
    assert_drawn(&report_dir.join("class-f1.png"));
    let svg = std::fs::read_to_string(report_dir.join("class-f1.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("Excessive Worry"), "{}", &svg[..200]);

    let summary = std::fs::read_to_string(report_dir.join("summary.md")).unwrap();
    let no_moe_report = RunDir::open(&runs.no_moe).unwrap().read_report().unwrap().unwrap();
    for (id, report, moe) in [(&moe_id, &report, "true"), (&no_moe_id, &no_moe_report, "false")] {
        let row = summary
            .lines()
            .find(|line| line.starts_with(&format!("| {id} |")))
            .unwrap_or_else(|| panic!("no row for {id} in\n{summary}"));
        assert!(row.contains(&format!("`ablation.moe={moe}`")), "{row}");
        assert!(row.contains(&format!("{:.4}", report.macro_f1)), "{row}");
        assert!(row.contains(&format!("{:.4}", report.weighted_f1)), "{row}");
        assert!(!row.contains("train.seed"), "the runs share their seed: {row}");
    }
    assert!(!summary.contains("Over seeds"), "no two runs differ only by seed");

    // A run directory from before metrics.csv and predictions.jsonl still reports: its
    // curves come from the event log.
    let old = out.path().join("old-run");
    copy_dir(&runs.no_moe, &old);
    std::fs::remove_file(old.join("metrics.csv")).unwrap();
    std::fs::remove_file(old.join("predictions.jsonl")).unwrap();
    let old_run = RunDir::open(&old).unwrap();
    assert_eq!(old_run.read_predictions().unwrap(), None);
    let old_rows = old_run.read_epochs().unwrap();
    assert_eq!(old_rows.len(), EPOCHS);
    assert_eq!(old_rows, RunDir::open(&runs.no_moe).unwrap().read_epochs().unwrap());
    let old_out = out.path().join("old-report");
    let written = memescope::report::write_report(std::slice::from_ref(&old), &old_out).unwrap();
    assert!(written.contains(&old_out.join("loss.png")));
    assert!(written.contains(&old_out.join("confusion-old-run.svg")));
    assert_drawn(&old_out.join("loss.png"));
}

/// Two runs that differ only by `train.seed` get a mean ± std row.
#[test]
fn runs_differing_only_by_seed_are_summarised_over_seeds() {
    let dir = tempfile::tempdir().unwrap();
    let (_, mut config) = synthetic(dir.path(), 4, 9);
    config.train.epochs = 1;
    let mut dirs = Vec::new();
    for seed in [1, 2] {
        config.train.seed = seed;
        let summary =
            train::run(config.clone(), &mut VecSink::default(), &StopFlag::default()).unwrap();
        dirs.push(summary.run_dir);
    }
    let out = dir.path().join("report");
    memescope::report::write_report(&dirs, &out).unwrap();
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    let row = summary
        .lines()
        .find(|l| l.contains("| 2 | 1, 2 |"))
        .unwrap_or_else(|| panic!("no seed group row in\n{summary}"));
    let f1: Vec<f64> = dirs
        .iter()
        .map(|d| RunDir::open(d).unwrap().read_report().unwrap().unwrap().macro_f1)
        .collect();
    let mean = (f1[0] + f1[1]) / 2.0;
    let std = (f1[0] - f1[1]).abs() / 2f64.sqrt();
    assert!(row.contains(&format!("{mean:.4} ± {std:.4}")), "{row}");
}

/// The PNG decodes and is not blank.
fn assert_drawn(path: &Path) {
    let image = image::open(path).unwrap().to_rgb8();
    assert!(image.width() >= 800 && image.height() >= 400);
    let dark = image.pixels().filter(|p| p.0.iter().all(|&c| c < 100)).count();
    assert!(dark > 1000, "{} looks blank ({dark} dark pixels)", path.display());
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}
