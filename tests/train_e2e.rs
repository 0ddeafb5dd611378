//! End to end: synthetic memes (text + images) → tiny random BERT and CLIP → cached
//! features → fusion model → run directory → `eval` from disk.

mod common;

use memescope::config::Config;
use memescope::data::{Dataset, DatasetFormat};
use memescope::events::{read_events, TrainEvent, VecSink};
use memescope::runs;
use memescope::train::{self, ResumeFrom, ResumeOptions, StopFlag};

#[test]
fn learns_synthetic_axiom_and_eval_reproduces_validation_metrics() {
    let (_dir, data, config) = common::synthetic_run("axiom", 20, 11);

    let mut sink = VecSink::default();
    let summary = train::run(config.clone(), &mut sink, &StopFlag::default()).unwrap();
    assert!(
        summary.macro_f1 >= 0.9,
        "macro-F1 {:.3} on a learnable synthetic set (weighted {:.3})",
        summary.macro_f1,
        summary.weighted_f1
    );

    // The run directory is complete, and its event log is the same stream we received.
    for file in ["config.toml", "events.jsonl", "report.json", "state.json", "best.safetensors"] {
        assert!(summary.run_dir.join(file).is_file(), "{file} missing");
    }
    let logged = read_events(&summary.run_dir.join("events.jsonl")).unwrap();
    assert_eq!(logged.len(), sink.0.len());
    if let Some(i) = (0..logged.len()).find(|&i| logged[i] != sink.0[i]) {
        panic!("event {i} differs after the JSONL round trip:\n{:?}\n{:?}", logged[i], sink.0[i]);
    }
    let started = logged.iter().find_map(|e| match e {
        TrainEvent::RunStarted(info) => Some(info.clone()),
        _ => None,
    });
    let started = started.expect("a run_started event");
    assert!(started.text_only_reason.is_none(), "images were used");
    assert_eq!(started.masked_images, 0);
    let epochs: Vec<_> = logged
        .iter()
        .filter_map(|e| match e {
            TrainEvent::Epoch(epoch) => Some(epoch.clone()),
            _ => None,
        })
        .collect();
    assert!(!epochs.is_empty());
    assert!(epochs.iter().all(|e| e.gates.is_some()), "MoE gate usage is reported");
    assert!(matches!(logged.last(), Some(TrainEvent::Finished(_))));

    // What produced the run: this process, and both encoders by the cache's fingerprints.
    let run = runs::RunDir::open(&summary.run_dir).unwrap();
    let provenance = run.read_provenance().unwrap();
    assert_eq!(provenance.sessions.len(), 1);
    let session = &provenance.sessions[0];
    assert_eq!(session.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(session.command_line, std::env::args().collect::<Vec<_>>());
    assert!(session.ended.as_deref().is_some_and(|end| end >= session.started.as_str()));
    assert_eq!(session.git_commit.as_deref(), train::git_commit());
    let roles: Vec<&str> = provenance.models.iter().map(|m| m.role.as_str()).collect();
    assert_eq!(roles, ["text", "vision"]);
    for (model, spec) in provenance
        .models
        .iter()
        .zip([config.text_encoder.model.clone(), config.vision_encoder.model.clone().unwrap()])
    {
        let files = memescope::encoders::resolve_model(&spec, model.role == "text").unwrap();
        assert_eq!(model.fingerprint, files.fingerprint().unwrap());
        assert_eq!(model.hub_revision, None, "local folders");
    }

    // Evaluating the saved run from disk on its validation file reproduces report.json.
    let report: runs::Report = runs::read_json(&summary.run_dir.join("report.json")).unwrap();
    assert_eq!(report.macro_f1, summary.macro_f1);
    common::assert_eval_reproduces_report(&summary.run_dir, &data);

    // A second run with the same config hits the feature cache for text and images.
    let mut sink = VecSink::default();
    let mut quick = config.clone();
    quick.train.epochs = 1;
    train::run(quick, &mut sink, &StopFlag::default()).unwrap();
    let hits = sink
        .0
        .iter()
        .filter(|e| matches!(e, TrainEvent::Stage { detail, .. } if detail.contains("cache hit")))
        .count();
    assert_eq!(hits, 4, "text and image features of both files come from the cache");
    assert!(!sink.0.iter().any(|e| matches!(e, TrainEvent::Progress { .. })), "nothing re-encoded");
}

#[test]
fn learns_synthetic_restore_multi_label_with_thresholds() {
    let (_dir, _, config) = common::synthetic_run("restore", 16, 5);
    let summary = train::run(config, &mut VecSink::default(), &StopFlag::default()).unwrap();
    let report: runs::Report = runs::read_json(&summary.run_dir.join("report.json")).unwrap();
    assert!(report.multi_label);
    let thresholds = report.thresholds.expect("per-class thresholds for multi-label runs");
    assert_eq!(thresholds.len(), 7);
    assert!(thresholds.iter().all(|t| (0.0..1.0).contains(t)));
    assert!(report.metrics.samples_f1.is_some());
    assert!(summary.macro_f1 >= 0.8, "multi-label macro-F1 {:.3}", summary.macro_f1);
}

#[test]
fn stop_request_leaves_a_consistent_run_that_resumes() {
    let (_dir, _, mut config) = common::synthetic_run("axiom", 8, 2);
    config.train.epochs = 4;

    // Ask to stop as soon as the second epoch's first step is reported.
    struct StopInEpochTwo(StopFlag, Vec<TrainEvent>);
    impl memescope::events::EventSink for StopInEpochTwo {
        fn emit(&mut self, event: &TrainEvent) -> anyhow::Result<()> {
            if matches!(event, TrainEvent::Step(s) if s.epoch == 2) {
                self.0.request();
            }
            self.1.push(event.clone());
            Ok(())
        }
    }
    let stop = StopFlag::default();
    let mut sink = StopInEpochTwo(stop.clone(), Vec::new());
    let summary = train::run(config, &mut sink, &stop).unwrap();
    assert!(
        matches!(sink.1.last(), Some(TrainEvent::Stopped { epoch: 2, .. })),
        "{:?}",
        sink.1.last()
    );
    assert_eq!(summary.epochs_run, 1);
    for file in [
        "config.toml",
        "events.jsonl",
        "report.json",
        "state.json",
        "best.safetensors",
        "last.safetensors",
    ] {
        assert!(summary.run_dir.join(file).is_file(), "{file} missing after stop");
    }
    let state: runs::TrainState = runs::read_json(&summary.run_dir.join("state.json")).unwrap();
    assert_eq!(state.completed_epochs, 1);
    // metrics.csv holds the header and the one completed epoch.
    let metrics = std::fs::read_to_string(summary.run_dir.join("metrics.csv")).unwrap();
    assert_eq!(metrics.lines().count(), 2, "{metrics}");
    assert!(metrics.starts_with("epoch,") && metrics.lines().nth(1).unwrap().starts_with("1,"));

    let mut sink = VecSink::default();
    let resumed =
        train::resume(&summary.run_dir, &ResumeOptions::default(), &mut sink, &StopFlag::default())
            .unwrap();
    assert_eq!(resumed.epochs_run, 4);
    assert_eq!(
        epochs_in(&sink.0),
        vec![2, 3, 4],
        "resume continues after the last completed epoch"
    );
    let all = read_events(&summary.run_dir.join("events.jsonl")).unwrap();
    assert!(all.iter().any(|e| matches!(e, TrainEvent::Stopped { .. })));
    assert!(matches!(all.last(), Some(TrainEvent::Finished(_))));
    let rows = runs::RunDir::open(&summary.run_dir).unwrap().read_epochs().unwrap();
    assert_eq!(
        rows.iter().map(|r| r.epoch).collect::<Vec<_>>(),
        [1, 2, 3, 4],
        "appended on resume"
    );
}

#[test]
fn diverging_loss_fails_clearly_and_keeps_the_last_good_checkpoint() {
    let (_dir, _, mut config) = common::synthetic_run("axiom", 6, 4);
    config.train.epochs = 1;
    let good = train::run(config.clone(), &mut VecSink::default(), &StopFlag::default()).unwrap();
    let checkpoint = std::fs::read(good.run_dir.join("last.safetensors")).unwrap();

    // Extend the run with a learning rate that must blow up.
    config.train.lr = 1e38;
    config.train.grad_clip = 0.0;
    std::fs::write(good.run_dir.join("config.toml"), config.to_toml_string()).unwrap();
    let mut sink = VecSink::default();
    let extend = ResumeOptions { epochs: Some(3), ..Default::default() };
    let error = train::resume(&good.run_dir, &extend, &mut sink, &StopFlag::default()).unwrap_err();
    let message = format!("{error:#}");
    assert!(message.contains("loss became") && message.contains("epoch 2"), "{message}");
    match sink.0.last() {
        Some(TrainEvent::Failed { message }) => assert!(message.contains("train.lr"), "{message}"),
        other => panic!("expected a failed event, got {other:?}"),
    }
    assert_eq!(
        std::fs::read(good.run_dir.join("last.safetensors")).unwrap(),
        checkpoint,
        "the last good checkpoint is kept"
    );
    let report: runs::Report = runs::read_json(&good.run_dir.join("report.json")).unwrap();
    assert_eq!(report.status, runs::RunStatus::Failed);
}

/// A run's weights and optimizer state, stopped after epoch 2 and resumed, end bit-identical
/// to the same run never interrupted: the checkpoint carries the moments and the progress,
/// batches and dropout masks derive from the seed, the epoch and the step.
#[test]
fn resume_after_a_stop_ends_bit_identical_to_an_uninterrupted_run() {
    let (_dir, _, mut config) = common::synthetic_run("axiom", 6, 12);
    config.train.epochs = 4;
    config.model.dropout = 0.2;
    let whole = train::run(config.clone(), &mut VecSink::default(), &StopFlag::default()).unwrap();

    struct StopInEpochThree(StopFlag);
    impl memescope::events::EventSink for StopInEpochThree {
        fn emit(&mut self, event: &TrainEvent) -> anyhow::Result<()> {
            if matches!(event, TrainEvent::Step(s) if s.epoch == 3) {
                self.0.request();
            }
            Ok(())
        }
    }
    let stop = StopFlag::default();
    let stopped = train::run(config, &mut StopInEpochThree(stop.clone()), &stop).unwrap();
    assert!(stop.stopped_a_run());
    assert_eq!(stopped.epochs_run, 2);
    let report: runs::Report = runs::read_json(&stopped.run_dir.join("report.json")).unwrap();
    assert_eq!(report.status, runs::RunStatus::Stopped);
    let options = ResumeOptions::default();
    let resumed =
        train::resume(&stopped.run_dir, &options, &mut VecSink::default(), &StopFlag::default())
            .unwrap();
    assert_eq!(resumed.epochs_run, 4);

    for file in ["last.safetensors", "best.safetensors"] {
        let (a, b) = (weights(&whole.run_dir.join(file)), weights(&stopped.run_dir.join(file)));
        assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
        assert!(
            a.keys().any(|name| name.starts_with("optimizer/")) == (file == "last.safetensors")
        );
        for (name, values) in &a {
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert!(bits(values) == bits(&b[name]), "{file}: {name} differs after the resume");
        }
    }
    let report = |dir: &std::path::Path| -> runs::Report {
        runs::read_json(&dir.join("report.json")).unwrap()
    };
    let (a, b) = (report(&whole.run_dir), report(&stopped.run_dir));
    assert_eq!((a.best_epoch, &a.metrics), (b.best_epoch, &b.metrics));
    assert_eq!(b.status, runs::RunStatus::Finished);
    let state = |dir: &std::path::Path| -> runs::TrainState {
        runs::read_json(&dir.join("state.json")).unwrap()
    };
    let (a, b) = (state(&whole.run_dir), state(&stopped.run_dir));
    assert_eq!(
        (a.global_step, a.best_score, a.lr_scale),
        (b.global_step, b.best_score, b.lr_scale)
    );
}

/// A finished run resumes only to be extended (`train.epochs`); a damaged last checkpoint is
/// an error naming it, and the best one is used only when asked.
#[test]
fn resume_extends_finished_runs_and_never_silently_skips_a_damaged_checkpoint() {
    let (_dir, _, mut config) = common::synthetic_run("axiom", 6, 13);
    config.train.epochs = 2;
    let run = train::run(config, &mut VecSink::default(), &StopFlag::default()).unwrap().run_dir;
    let resume = |options: ResumeOptions| {
        let mut sink = VecSink::default();
        let outcome = train::resume(&run, &options, &mut sink, &StopFlag::default());
        (outcome, epochs_in(&sink.0))
    };
    let message = format!("{:#}", resume(ResumeOptions::default()).0.unwrap_err());
    assert!(message.contains("train.epochs"), "{message}");

    let (outcome, epochs) = resume(ResumeOptions { epochs: Some(3), ..Default::default() });
    assert_eq!(outcome.unwrap().epochs_run, 3);
    assert_eq!(epochs, [3]);
    let saved = memescope::config::Config::load(&run.join("config.toml"), &[]).unwrap();
    assert_eq!(saved.train.epochs, 3, "config.toml says how far the run goes now");
    let best_epoch = runs::read_json::<runs::Report>(&run.join("report.json")).unwrap().best_epoch;

    let last = run.join("last.safetensors");
    let bytes = std::fs::read(&last).unwrap();
    std::fs::write(&last, &bytes[..bytes.len() / 2]).unwrap();
    let extend = ResumeOptions { epochs: Some(4), ..Default::default() };
    let (outcome, epochs) = resume(extend.clone());
    let message = format!("{:#}", outcome.unwrap_err());
    assert!(message.contains(&last.display().to_string()), "{message}");
    assert!(message.contains("corrupt or truncated") && message.contains("--resume-from best"));
    assert!(epochs.is_empty(), "nothing trained");
    assert_eq!(std::fs::read(&last).unwrap().len(), bytes.len() / 2, "left for inspection");

    let (outcome, epochs) = resume(ResumeOptions { from: ResumeFrom::Best, ..extend });
    assert_eq!(outcome.unwrap().epochs_run, 4);
    assert_eq!(epochs, (best_epoch + 1..=4).collect::<Vec<_>>());
    assert!(runs::read_checkpoint(&last, &candle_core::Device::Cpu).is_ok());
}

/// The epochs that `events` report as ended, in order.
fn epochs_in(events: &[TrainEvent]) -> Vec<usize> {
    events
        .iter()
        .filter_map(|e| match e {
            TrainEvent::Epoch(r) => Some(r.epoch),
            _ => None,
        })
        .collect()
}

/// Every tensor of a checkpoint by name, as plain numbers (file byte order is not stable).
fn weights(path: &std::path::Path) -> std::collections::BTreeMap<String, Vec<f32>> {
    candle_core::safetensors::load(path, &candle_core::Device::Cpu)
        .unwrap()
        .into_iter()
        .map(|(name, t)| (name, t.flatten_all().unwrap().to_vec1::<f32>().unwrap()))
        .collect()
}

#[test]
fn same_seed_reproduces_the_run_on_cpu() {
    let (_dir, _, mut config) = common::synthetic_run("axiom", 6, 9);
    config.train.epochs = 2;
    config.model.dropout = 0.2;
    let run = |config: &Config| {
        let summary = train::run(config.clone(), &mut VecSink::default(), &StopFlag::default());
        let dir = summary.unwrap().run_dir;
        let report: runs::Report = runs::read_json(&dir.join("report.json")).unwrap();
        (weights(&dir.join("last.safetensors")), report.metrics)
    };
    let first = run(&config);
    let second = run(&config);
    for (name, values) in &first.0 {
        let other = &second.0[name];
        let diff = values.iter().zip(other).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(diff == 0.0, "{name} differs by up to {diff}");
    }
    assert_eq!(first.1, second.1, "two runs with seed {} differ", config.train.seed);
    config.train.seed += 1;
    assert!(first.0 != run(&config).0, "another seed gives other weights");
}

/// Cross-validation scores each fold on its held-out part only after choosing the epoch on
/// other samples: a split of the fold's training part, or the validation file when the
/// config has one.
#[test]
fn cross_validation_selects_on_other_samples_than_it_scores() {
    let (_dir, data, mut config) = common::synthetic_run("axiom", 12, 4);
    config.train.epochs = 15;
    let count = |path| Dataset::load(path, DatasetFormat::Axiom).unwrap().len();
    let (train_len, validation_len) = (count(&data.train), count(&data.validation));

    for with_validation_file in [false, true] {
        let mut config = config.clone();
        if !with_validation_file {
            config.data.validation = None;
        }
        let mut fold_events = 0;
        let mut held_out_reports = Vec::new();
        let mut observe = |fold: usize, event: &TrainEvent| {
            fold_events += 1;
            if let TrainEvent::Stage { name, detail } = event {
                if name == "held-out" {
                    held_out_reports.push((fold, detail.clone()));
                }
            }
        };
        let summary =
            train::cross_validate(config, 3, 9, &mut observe, &StopFlag::default()).unwrap();
        assert!(fold_events > 0);
        // Each fold reports its held-out score as it ends, the same one the summary keeps.
        let expected: Vec<(usize, String)> = summary
            .folds
            .iter()
            .map(|f| (f.fold, format!("{} samples: macro-F1 {:.4}", f.val_samples, f.macro_f1)))
            .collect();
        assert_eq!(held_out_reports.len(), 3);
        for ((fold, detail), (want_fold, want_start)) in held_out_reports.iter().zip(&expected) {
            assert_eq!(fold, want_fold);
            assert!(detail.starts_with(want_start.as_str()), "{detail} vs {want_start}");
        }
        assert_eq!(summary.folds.len(), 3);
        assert_eq!(summary.folds.iter().map(|f| f.val_samples).sum::<usize>(), train_len);
        for fold in &summary.folds {
            if with_validation_file {
                assert_eq!(fold.selection_samples, validation_len);
                assert_eq!(fold.train_samples + fold.val_samples, train_len);
            } else {
                assert!(fold.selection_samples > 0);
                assert_eq!(
                    fold.train_samples + fold.selection_samples + fold.val_samples,
                    train_len
                );
            }
            assert!(fold.run_dir.join("report.json").is_file());
            assert!((0.0..=1.0).contains(&fold.macro_f1));
        }
        assert!(summary.dir.join("cv.json").is_file());
        assert!(
            summary.scores.macro_f1_mean >= 0.8,
            "held-out macro-F1 {:.3} on a learnable set ({with_validation_file})",
            summary.scores.macro_f1_mean
        );
    }
}

/// `memescope ensemble`: cross-validations averaged fold by fold from the held-out
/// predictions their folds kept. A CV averaged with itself scores exactly as it did (the
/// decisions, and for multi-label the thresholds chosen again on validation, are its own);
/// two seeds average to what the held-out files give by hand; other folds are refused.
#[test]
fn cross_validations_average_into_an_ensemble() {
    for format in ["axiom", "restore"] {
        let (_dir, _data, mut config) = common::synthetic_run(format, 8, 21);
        config.train.epochs = 4;
        config.data.validation = None;
        let cv = |config: &Config, fold_seed: u64| {
            train::cross_validate(
                config.clone(),
                3,
                fold_seed,
                &mut |_, _| {},
                &StopFlag::default(),
            )
            .unwrap()
        };
        let first = cv(&config, 5);
        let mut reseeded = config.clone();
        reseeded.train.seed += 1;
        let second = cv(&reseeded, 5);
        for fold in &first.folds {
            assert!(fold.run_dir.join("held-out.jsonl").is_file(), "{format}");
        }

        let itself =
            train::ensemble_cross_validations(&[first.dir.clone(), first.dir.clone()]).unwrap();
        for (ensemble, own) in itself.folds.iter().zip(&first.folds) {
            assert_eq!(ensemble.macro_f1, own.macro_f1, "{format} fold {}", own.fold);
            assert_eq!(ensemble.weighted_f1, own.weighted_f1, "{format} fold {}", own.fold);
            assert_eq!(ensemble.samples, own.val_samples);
        }

        let pair =
            train::ensemble_cross_validations(&[first.dir.clone(), second.dir.clone()]).unwrap();
        assert_eq!(pair.folds.len(), 3);
        for (i, fold) in pair.folds.iter().enumerate() {
            assert_eq!(fold.member_macro_f1, [first.folds[i].macro_f1, second.folds[i].macro_f1]);
            assert!((0.0..=1.0).contains(&fold.macro_f1));
        }
        if format == "axiom" {
            // By hand: the mean of the two members' probabilities, its most probable label.
            for (i, fold) in pair.folds.iter().enumerate() {
                let read = |summary: &train::CvSummary| {
                    runs::read_predictions(&summary.folds[i].run_dir.join("held-out.jsonl"))
                        .unwrap()
                };
                let (a, b) = (read(&first), read(&second));
                let labels: Vec<String> = a[0].probabilities.keys().cloned().collect();
                let mut truth = Vec::new();
                let mut predicted = Vec::new();
                for (a, b) in a.iter().zip(&b) {
                    assert_eq!(a.sample_id, b.sample_id);
                    let mean = |label: &String| a.probabilities[label] + b.probabilities[label];
                    let best = labels.iter().max_by(|x, y| mean(x).total_cmp(&mean(y))).unwrap();
                    predicted.push(labels.iter().position(|l| l == best).unwrap());
                    truth.push(labels.iter().position(|l| *l == a.truth[0]).unwrap());
                }
                let metrics = memescope::metrics::single_label_metrics(&labels, &truth, &predicted);
                assert!((metrics.macro_f1 - fold.macro_f1).abs() < 1e-9, "fold {}", i + 1);
            }
        }

        // Other folds (another fold seed) hold other samples: refused, naming the file.
        let other = cv(&config, 6);
        let error =
            train::ensemble_cross_validations(&[first.dir.clone(), other.dir.clone()]).unwrap_err();
        let message = format!("{error:#}");
        assert!(message.contains("must share"), "{message}");
        assert!(message.contains("held-out.jsonl"), "{message}");
    }
}

#[test]
fn trained_runs_average_into_an_ensemble_for_eval() {
    let mut kept = Vec::new();
    let mut runs_of_each_format = Vec::new();
    for format in ["axiom", "restore"] {
        let (dir, data, mut config) = common::synthetic_run(format, 8, 21);
        config.train.epochs = 3;
        let train_one = |config: &Config| {
            train::run(config.clone(), &mut VecSink::default(), &StopFlag::default())
                .unwrap()
                .run_dir
        };
        let a = train_one(&config);
        config.train.seed += 1;
        let b = train_one(&config);
        let eval = |dirs: &[std::path::PathBuf]| {
            train::evaluate_runs(dirs, &data.validation, Some(&data.images)).unwrap()
        };
        let (alone_a, alone_b) = (eval(std::slice::from_ref(&a)), eval(std::slice::from_ref(&b)));
        let pair = eval(&[a.clone(), b.clone()]);
        assert_eq!(pair.samples, alone_a.samples);
        for ((mean, x), y) in
            pair.predictions.iter().zip(&alone_a.predictions).zip(&alone_b.predictions)
        {
            assert_eq!((&mean.sample_id, &mean.truth), (&x.sample_id, &x.truth));
            for (label, p) in &mean.probabilities {
                let expected = (x.probabilities[label] + y.probabilities[label]) / 2.0;
                assert!((p - expected).abs() < 1e-6, "{format} {}: {label}", mean.sample_id);
            }
        }
        let ensemble = train::load_run_ensemble(&[a.clone(), b.clone()]).unwrap();
        for mean in &pair.predictions {
            let expected: Vec<String> = match &ensemble.thresholds {
                // Multi-label: each label at or above the threshold chosen for the pair.
                Some(thresholds) => ensemble
                    .space
                    .labels
                    .iter()
                    .zip(thresholds)
                    .filter(|(label, t)| mean.probabilities[*label] >= **t)
                    .map(|(label, _)| label.clone())
                    .collect(),
                None => {
                    let best = mean.probabilities.iter().max_by(|l, r| l.1.total_cmp(r.1));
                    vec![best.unwrap().0.clone()]
                }
            };
            assert_eq!(mean.predicted, expected, "{format} {}", mean.sample_id);
        }
        assert_eq!(ensemble.thresholds.is_some(), format == "restore");
        if format == "restore" {
            // Chosen on the pair's averaged validation predictions, as a run chooses its own.
            let read = |run: &std::path::PathBuf| {
                runs::read_predictions(&run.join("predictions.jsonl")).unwrap()
            };
            let (va, vb) = (read(&a), read(&b));
            let labels = &ensemble.space.labels;
            let mean = |x: &runs::Prediction, y: &runs::Prediction, label: &String| {
                ((f64::from(x.probabilities[label]) + f64::from(y.probabilities[label])) / 2.0)
                    as f32
            };
            let probabilities: Vec<Vec<f32>> = va
                .iter()
                .zip(&vb)
                .map(|(x, y)| labels.iter().map(|label| mean(x, y, label)).collect())
                .collect();
            let truth: Vec<Vec<bool>> =
                va.iter().map(|x| labels.iter().map(|l| x.truth.contains(l)).collect()).collect();
            let expected = memescope::metrics::best_thresholds(&probabilities, &truth);
            assert_eq!(ensemble.thresholds, Some(expected));
        }

        // A run twice is that run: the same thresholds (chosen again on its averaged
        // validation predictions) and the same scores.
        let report: runs::Report = runs::read_json(&a.join("report.json")).unwrap();
        let twice = train::load_run_ensemble(&[a.clone(), a.clone()]).unwrap();
        assert_eq!(twice.thresholds, report.thresholds, "{format}");
        assert_eq!(eval(&[a.clone(), a.clone()]).metrics, alone_a.metrics, "{format}");

        // Scored from the validation predictions the runs kept: a run twice is that run.
        let kept_twice = train::ensemble_validations(&[a.clone(), a.clone()]).unwrap();
        assert_eq!(
            (kept_twice.macro_f1, kept_twice.weighted_f1),
            (report.macro_f1, report.weighted_f1)
        );
        assert_eq!(kept_twice.samples, alone_a.samples);
        let kept_pair = train::ensemble_validations(&[a.clone(), b.clone()]).unwrap();
        let report_b: runs::Report = runs::read_json(&b.join("report.json")).unwrap();
        assert_eq!(kept_pair.member_macro_f1, [report.macro_f1, report_b.macro_f1]);
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_memescope"))
            .arg("ensemble")
            .args([&a, &b])
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let printed = String::from_utf8(output.stdout).unwrap();
        let line =
            format!("macro-F1 {:.4}, weighted-F1 {:.4}", kept_pair.macro_f1, kept_pair.weighted_f1);
        assert!(printed.contains(&line), "{printed}");

        // The command line: several --run, one JSON report naming them.
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_memescope"))
            .args(["eval", "--run"])
            .arg(&a)
            .arg("--run")
            .arg(&b)
            .arg("--data")
            .arg(&data.validation)
            .arg("--images")
            .arg(&data.images)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let printed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(printed["runs"], serde_json::json!([a, b]));
        assert_eq!(printed["macro_f1"], serde_json::json!(pair.metrics.macro_f1));
        runs_of_each_format.push(a);
        kept.push(dir);
    }
    // An AxiOM run and a RESTORE run label different things: refused, naming both, whether
    // loaded as models or scored from their kept predictions.
    let loaded = train::load_run_ensemble(&runs_of_each_format).err().unwrap().to_string();
    let kept = train::ensemble_validations(&runs_of_each_format).unwrap_err().to_string();
    for error in [loaded, kept] {
        assert!(error.contains("must share their labels"), "{error}");
        for run in &runs_of_each_format {
            assert!(error.contains(&run.display().to_string()), "{error}");
        }
    }
}
