//! `memescope cv`: stratified k-fold cross-validation of a config on its training file.

use std::process::ExitCode;

use anyhow::Result;

use crate::config::Config;
use crate::events::TrainEvent;
use crate::runs::CvDir;
use crate::signals::StopSignals;
use crate::train::{cross_validate, StopFlag};

/// Runs the folds off the async workers; SIGINT or SIGTERM stops the fold in flight at its
/// next step and exits 130 or 143.
pub async fn run(config: Config, folds: usize, seed: Option<u64>) -> Result<ExitCode> {
    let signals = StopSignals::listen()?;
    let stop = StopFlag::default();
    let (first, flag) = (signals.clone(), stop.clone());
    tokio::spawn(async move {
        let signal = first.first().await;
        eprintln!("\n{}: stopping the fold at the next step (again to stop now)…", signal.name());
        flag.request();
    });
    let outcome = {
        let stop = stop.clone();
        tokio::task::spawn_blocking(move || cross_validate_and_print(config, folds, seed, &stop))
            .await?
    };
    match (signals.received(), stop.stopped_a_run()) {
        (Some(signal), true) => {
            if let Err(error) = outcome {
                eprintln!("{error:#}");
            }
            Ok(signal.exit_code())
        }
        _ => outcome.map(|()| ExitCode::SUCCESS),
    }
}

fn cross_validate_and_print(
    config: Config,
    folds: usize,
    seed: Option<u64>,
    stop: &StopFlag,
) -> Result<()> {
    let seed = seed.unwrap_or(config.data.split_seed);
    // Fold 0 is the preparation every fold shares (data, features, the validation file).
    let label = |fold: usize| match fold {
        0 => "[cv]".to_string(),
        n => format!("[fold {n}]"),
    };
    let mut show = |fold: usize, event: &TrainEvent| match event {
        TrainEvent::Stage { name, detail } => eprintln!("{} {name}: {detail}", label(fold)),
        TrainEvent::Epoch(record) => eprintln!(
            "{} epoch {}: selection macro-F1 {:.4}, weighted-F1 {:.4}{} ({:.1}s)",
            label(fold),
            record.epoch,
            record.metrics.macro_f1,
            record.metrics.weighted_f1,
            if record.is_best { " *best*" } else { "" },
            record.seconds
        ),
        TrainEvent::Finished(summary) => eprintln!(
            "{} done: best epoch {}, selection macro-F1 {:.4}, weighted-F1 {:.4} ({:.0}s)",
            label(fold),
            summary.best_epoch,
            summary.macro_f1,
            summary.weighted_f1,
            summary.seconds
        ),
        _ => {}
    };
    let summary = cross_validate(config, folds, seed, &mut show, stop)?;
    println!(
        "fold  train  select  held-out  best-epoch  select-macro  macro-F1  weighted-F1  seconds"
    );
    for fold in &summary.folds {
        println!(
            "{:>4}  {:>5}  {:>6}  {:>8}  {:>10}  {:>12.4}  {:>8.4}  {:>11.4}  {:>7.0}",
            fold.fold,
            fold.train_samples,
            fold.selection_samples,
            fold.val_samples,
            fold.best_epoch,
            fold.selection_macro_f1,
            fold.macro_f1,
            fold.weighted_f1,
            fold.seconds
        );
    }
    println!(
        "{}   ({} folds, seed {seed}, {:.0}s)",
        summary.scores,
        summary.folds.len(),
        summary.seconds
    );
    println!("{}", CvDir { path: summary.dir.clone() }.summary().display());
    Ok(())
}
