//! The training engine. It runs on tokio's blocking pool (or any thread) and reports only
//! through [`TrainEvent`]s: it never touches the terminal.

mod adamw;
mod batches;
mod cv;
mod device;
mod evaluate;
mod load;
mod prepare;
mod priority;
mod report;
mod run_dir;
mod schedule;
mod trained;
mod trainer;

pub use adamw::FusedAdamW;
pub use batches::Targets;
pub use cv::{cross_validate, CvSummary, FoldResult};
pub use device::{describe as describe_device, select_device};
pub use evaluate::{decide, predict, probabilities, score, Predictions};
pub use load::{load_data, ocr_cache_dir, LoadedData};
pub use prepare::{load_train, prepare, prepare_eval, Loaded, Prepared, Split};
pub use priority::lower_compute_pool_priority;
pub use report::{Report, TrainState};
pub use run_dir::{read_json, write_json, RunDir};
pub use trained::{load_trained_run, TrainedRun};
pub use trainer::{build_model, build_model_for, Trainer};

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};

use crate::config::Config;
use crate::events::{ChannelSink, EventSink, Fanout, JsonlSink, RunInfo, RunSummary, TrainEvent};
use crate::model::FusionModel;

/// A cooperative stop request, checked by the trainer at every step boundary.
#[derive(Debug, Clone, Default)]
pub struct StopFlag(Arc<AtomicBool>);

impl StopFlag {
    pub fn request(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_requested(&self) -> bool {
        self.0.load(Ordering::SeqCst)
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

/// Continues the run in `run_dir` from its last completed epoch.
pub fn spawn_resume(run_dir: std::path::PathBuf) -> RunHandle {
    spawn(move |sink, stop| resume(&run_dir, sink, &stop))
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
    std::fs::write(run.config(), config.to_toml_string())
        .with_context(|| format!("writing {}", run.config().display()))?;
    execute(&config, &run, TrainState::default(), sink, stop)
}

/// Resumes the run in `run_dir`: same config, weights from `last.safetensors`.
pub fn resume(run_dir: &Path, sink: &mut dyn EventSink, stop: &StopFlag) -> Result<RunSummary> {
    let run = RunDir::open(run_dir)?;
    let config = Config::load(&run.config(), &[])?;
    let state: TrainState =
        if run.state().exists() { read_json(&run.state())? } else { TrainState::default() };
    execute(&config, &run, state, sink, stop)
}

/// Runs with the run directory's event log attached; any error also becomes a `Failed` event.
fn execute(
    config: &Config,
    run: &RunDir,
    state: TrainState,
    sink: &mut dyn EventSink,
    stop: &StopFlag,
) -> Result<RunSummary> {
    let log = JsonlSink::append(&run.events())?;
    let mut sinks = Fanout(vec![Box::new(log), Box::new(ForwardTo(sink))]);
    let mut sink_error = None;
    let mut emit = |event: TrainEvent| {
        if let Err(e) = sinks.emit(&event) {
            sink_error.get_or_insert(e);
        }
    };
    let outcome = train(config, run, state, &mut emit, stop);
    match &outcome {
        Ok(summary) if !stop.is_requested() => emit(TrainEvent::Finished(summary.clone())),
        Ok(_) => {}
        Err(error) => emit(TrainEvent::Failed { message: format!("{error:#}") }),
    }
    match sink_error {
        Some(e) if outcome.is_ok() => Err(e.context("writing events")),
        _ => outcome,
    }
}

/// Borrows a sink for the lifetime of a `Fanout` that wants owned boxes.
struct ForwardTo<'a>(&'a mut dyn EventSink);

impl EventSink for ForwardTo<'_> {
    fn emit(&mut self, event: &TrainEvent) -> Result<()> {
        self.0.emit(event)
    }
}

fn train(
    config: &Config,
    run: &RunDir,
    state: TrainState,
    emit: &mut dyn FnMut(TrainEvent),
    stop: &StopFlag,
) -> Result<RunSummary> {
    let device = select_device(&config.train.device)?;
    let prepared = prepare(config, &device, emit)?;
    train_on(config, run, state, &prepared, &device, emit, stop)
}

/// Trains on already prepared features (a fresh run, a resumed one, or a CV fold).
pub(crate) fn train_on(
    config: &Config,
    run: &RunDir,
    state: TrainState,
    prepared: &Prepared,
    device: &candle_core::Device,
    emit: &mut dyn FnMut(TrainEvent),
    stop: &StopFlag,
) -> Result<RunSummary> {
    let device = device.clone();
    let space = &prepared.train.dataset.space;
    let (model, mut varmap) =
        build_model(config, &prepared.train.features, space.len(), space.multi_label, &device)?;
    if state.completed_epochs > 0 || run.last_checkpoint().exists() && state.global_step > 0 {
        varmap
            .load(run.last_checkpoint())
            .with_context(|| format!("loading {}", run.last_checkpoint().display()))?;
    }
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
        text_encoder: config.text_encoder.model.clone(),
        vision_encoder: config.vision_encoder.model.clone(),
        text_only_reason: prepared.report.text_only_reason.clone(),
        ablation: config.ablation,
        epochs: config.train.epochs,
        steps_per_epoch: prepared.train.dataset.len().div_ceil(config.train.batch_size),
        parameters,
    }));
    let mut trainer = Trainer { config, run, device: &device, stop, emit };
    trainer.train(prepared, &model, &varmap, state)
}
