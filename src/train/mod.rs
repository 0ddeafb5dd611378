//! The training engine. It runs on tokio's blocking pool (or any thread) and reports only
//! through [`TrainEvent`]s: it never touches the terminal.

mod adamw;
mod averaged;
mod batches;
mod build;
mod cv;
mod cv_ensemble;
mod device;
mod evaluate;
mod load;
mod optimizers;
mod prepare;
mod priority;
mod provenance;
mod resume;
mod run_ensemble;
mod run_log;
mod schedule;
mod trained;
mod trainer;

pub use adamw::FusedAdamW;
pub use batches::{batch, epoch_order, Targets};
pub use build::{build_model, build_model_for};
pub use cv::{cross_validate, CvSummary, FoldResult, FoldScores};
pub use cv_ensemble::{ensemble_cross_validations, EnsembleFold, EnsembleSummary};
pub use device::{describe as describe_device, memory_in_use, select_device};
pub use evaluate::{decide, probabilities, score, validation_outputs, ValidationOutputs};
pub use load::{load_dataset, ocr_cache_dir, ResolvedDataset};
pub use prepare::{load_train, prepare, prepare_eval, FeaturizedTrainFile, Prepared, Split};
pub use priority::lower_compute_pool_priority;
pub use provenance::git_commit;
pub use resume::{ResumeFrom, ResumeOptions};
pub use run_ensemble::{
    ensemble_validations, evaluate_runs, load_run_ensemble, RunEnsemble, ValidationEnsemble,
};
pub use schedule::LrSchedule;
pub use trained::{load_trained_run, Evaluation, TrainedRun};
pub use trainer::Trainer;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Result;

use crate::config::{Config, Precision};
use crate::events::{ChannelSink, EventSink, RunInfo, RunSummary, TrainEvent};
use crate::model::FusionModel;
use crate::runs::RunDir;
use resume::{resume_point, Start};
use run_log::RunLog;

/// A cooperative stop request, checked by the trainer at every step boundary.
#[derive(Debug, Clone, Default)]
pub struct StopFlag {
    requested: Arc<AtomicBool>,
    honoured: Arc<AtomicBool>,
}

impl StopFlag {
    pub fn request(&self) {
        self.requested.store(true, Ordering::SeqCst);
    }

    pub fn is_requested(&self) -> bool {
        self.requested.load(Ordering::SeqCst)
    }

    /// Whether a run stopped for the request (rather than ending first: a request that
    /// comes during the last epoch's validation finds a run that completes).
    pub fn stopped_a_run(&self) -> bool {
        self.honoured.load(Ordering::SeqCst)
    }

    pub(crate) fn honour(&self) {
        self.honoured.store(true, Ordering::SeqCst);
    }
}

/// A run in flight: its event stream, a way to stop it, and its outcome.
pub struct RunHandle {
    pub events: tokio::sync::mpsc::UnboundedReceiver<TrainEvent>,
    pub stop: StopFlag,
    pub outcome: tokio::task::JoinHandle<Result<RunSummary>>,
}

/// Starts a training run on tokio's blocking pool. Must be called inside a tokio runtime.
/// Every event also lands in the run directory's `events.jsonl`.
pub fn spawn_run(config: Config) -> RunHandle {
    spawn(move |sink, stop| run(config, sink, &stop))
}

/// Continues the run in `run_dir` from a checkpoint (see [`resume`]).
pub fn spawn_resume(run_dir: std::path::PathBuf, options: ResumeOptions) -> RunHandle {
    spawn(move |sink, stop| resume(&run_dir, &options, sink, &stop))
}

fn spawn(
    job: impl FnOnce(&mut dyn EventSink, StopFlag) -> Result<RunSummary> + Send + 'static,
) -> RunHandle {
    let (sender, events) = tokio::sync::mpsc::unbounded_channel();
    let stop = StopFlag::default();
    let flag = stop.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        priority::yield_to_interactive_threads();
        job(&mut ChannelSink(sender), flag)
    });
    RunHandle { events, stop, outcome }
}

/// Trains a fresh run described by `config`, creating its run directory.
pub fn run(config: Config, sink: &mut dyn EventSink, stop: &StopFlag) -> Result<RunSummary> {
    let config = config.absolutized()?;
    let run = RunDir::create(&config.paths.runs, &config.ablation)?;
    run.write_config(&config)?;
    execute(&config, &run, Start::fresh(), sink, stop)
}

/// Resumes the run in `run_dir` with its own config: from `last.safetensors` (weights,
/// optimizer moments and progress of the last completed epoch) it ends exactly as the run
/// would have uninterrupted. `options` picks the checkpoint and can extend `train.epochs`.
pub fn resume(
    run_dir: &Path,
    options: &ResumeOptions,
    sink: &mut dyn EventSink,
    stop: &StopFlag,
) -> Result<RunSummary> {
    let run = RunDir::open(run_dir)?;
    let (config, start) = resume_point(&run, options)?;
    execute(&config, &run, start, sink, stop)
}

/// Runs with the run directory's event log attached; any error also becomes a `Failed` event.
fn execute(
    config: &Config,
    run: &RunDir,
    start: Start,
    sink: &mut dyn EventSink,
    stop: &StopFlag,
) -> Result<RunSummary> {
    provenance::begin_session(run)?;
    let _logging_to_run_log = crate::logging::run_span(&run.log()).entered();
    tracing::info!("run {} starts from step {}", run.id, start.state.global_step);
    let mut forward = |event: &TrainEvent| sink.emit(event);
    let mut log = RunLog::open(run, &mut forward)?;
    // A panic in training is this run's failure, recorded like any other: the dashboard
    // that started it keeps running and shows it failed.
    let outcome = catch_panic(|| train(config, run, start, &mut |event| log.emit(event), stop));
    provenance::end_session(run);
    // At info: the console already shows a failure through the run's events.
    match &outcome {
        Ok(summary) => tracing::info!("run {} ends after {} epochs", run.id, summary.epochs_run),
        Err(error) => tracing::info!("run {} failed: {error:#}", run.id),
    }
    match &outcome {
        Ok(summary) if !stop.stopped_a_run() => log.emit(TrainEvent::Finished(summary.clone())),
        Ok(_) => {}
        Err(error) => log.emit(TrainEvent::Failed { message: format!("{error:#}") }),
    }
    match log.finish() {
        Err(e) if outcome.is_ok() => Err(e.context("writing events")),
        _ => outcome,
    }
}

/// `job`'s result, or its panic as an error carrying the panic's message.
fn catch_panic<T>(job: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".into());
        Err(anyhow::anyhow!("the trainer panicked: {message}"))
    })
}

fn train(
    config: &Config,
    run: &RunDir,
    start: Start,
    emit: &mut dyn FnMut(TrainEvent),
    stop: &StopFlag,
) -> Result<RunSummary> {
    let device = select_device(&config.train.device)?;
    let prepared = prepare(config, &device, emit)?;
    provenance::record_models(run, config, prepared.report.text_only_reason.is_none());
    train_on(config, run, start, &prepared, &device, emit, stop)
}

/// Trains on already prepared features (a fresh run, a resumed one, or a CV fold).
pub(crate) fn train_on(
    config: &Config,
    run: &RunDir,
    start: Start,
    prepared: &Prepared,
    device: &candle_core::Device,
    emit: &mut dyn FnMut(TrainEvent),
    stop: &StopFlag,
) -> Result<RunSummary> {
    let device = device.clone();
    let space = &prepared.train.dataset.space;
    let (model, varmap) =
        build_model(config, &prepared.train.features, space.len(), space.multi_label, &device)?;
    start.load_weights(&varmap)?;
    if let Some(notice) = &start.notice {
        emit(TrainEvent::Stage { name: "resume".into(), detail: notice.clone() });
    }
    if config.train.precision != Precision::F32 && !device.is_cuda() {
        emit(TrainEvent::Stage {
            name: "precision".into(),
            detail: format!(
                "train.precision = \"{}\" is mixed precision for CUDA; this run is on the {} \
                 and trains in f32",
                config.train.precision.name(),
                describe_device(&device)
            ),
        });
    }
    let precision = match model.compute_dtype() {
        candle_core::DType::BF16 => Precision::Bf16,
        _ => Precision::F32,
    };
    let parameters = FusionModel::num_parameters(&varmap);
    emit(TrainEvent::RunStarted(RunInfo {
        run_id: run.id.clone(),
        run_dir: run.path.clone(),
        dataset: space.name.clone(),
        labels: space.labels.clone(),
        multi_label: space.multi_label,
        train_samples: prepared.train.dataset.len(),
        val_samples: prepared.validation.dataset.len(),
        masked_images: prepared.report.masked_images,
        device: describe_device(&device),
        precision,
        text_encoder: config.text_encoder.model.clone(),
        vision_encoder: config.vision_encoder.model.clone(),
        text_only_reason: prepared.report.text_only_reason.clone(),
        ablation: config.ablation,
        epochs: config.train.epochs,
        steps_per_epoch: prepared.train.dataset.len().div_ceil(config.train.batch_size),
        parameters,
    }));
    let mut trainer = Trainer { config, run, device: &device, stop, emit };
    let optimizer = start.checkpoint.as_ref().and_then(|(_, c)| c.optimizer.as_ref());
    trainer.train(prepared, &model, &varmap, start.state, optimizer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_in_training_becomes_the_runs_error() {
        let panicked = catch_panic::<()>(|| panic!("index out of bounds: {}", 7));
        let message = format!("{:#}", panicked.unwrap_err());
        assert_eq!(message, "the trainer panicked: index out of bounds: 7");
        assert_eq!(catch_panic(|| Ok(3)).unwrap(), 3);
        assert!(catch_panic::<()>(|| anyhow::bail!("plain error")).is_err());
    }
}
