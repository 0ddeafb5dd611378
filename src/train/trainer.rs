//! The epoch loop: AdamW with warmup/decay, gradient clipping, validation each epoch,
//! best-checkpoint selection by the harmonic mean of macro- and weighted-F1, early
//! stopping, NaN guard, and cooperative stopping at step boundaries.
//!
//! [`Trainer::train`] runs the loop; each batch is one [`Trainer::step`], each epoch ends in
//! [`Trainer::end_epoch`] (validation, checkpoints, `state.json`, `report.json`), and the
//! ways out are [`Trainer::finish`], [`Trainer::stop_now`] and [`Trainer::non_finite_loss`].

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use candle_core::{Device, Var};
use candle_nn::VarMap;

use super::batches::{batch, epoch_order, Targets};
use super::device::memory_in_use;
use super::evaluate::{
    decide, gate_usage, misclassified, predictions, score, validation_outputs,
    validation_thresholds, ValidationOutputs,
};
use super::optimizers::{clip_gradients, Optimizers};
use super::prepare::{Prepared, Split};
use super::schedule::{plateau_scale, LrSchedule};
use super::StopFlag;
use crate::config::Config;
use crate::events::{EpochRecord, RunSummary, StepRecord, TrainEvent};
use crate::metrics::Metrics;
use crate::model::FusionModel;
use crate::runs::{
    save_checkpoint, write_json, EpochRow, OptimizerState, Report, RunDir, RunStatus, TrainState,
};

pub struct Trainer<'a> {
    pub config: &'a Config,
    pub run: &'a RunDir,
    pub device: &'a Device,
    pub stop: &'a StopFlag,
    pub emit: &'a mut dyn FnMut(TrainEvent),
}

/// The model and everything a step changes or reads to change it.
struct Learner<'m> {
    model: &'m FusionModel,
    varmap: &'m VarMap,
    vars: Vec<Var>,
    optimizers: Optimizers,
    schedule: LrSchedule,
    targets: Targets,
}

/// Where the run stands: what `state.json` and `report.json` hold, and since when it runs
/// (a resumed run counts its earlier seconds).
struct Progress {
    state: TrainState,
    /// The best epoch's report; `None` until the first epoch ends.
    report: Option<Report>,
    started: Instant,
}

/// The epoch being trained and its running training loss.
struct EpochTally {
    epoch: usize,
    started: Instant,
    loss_sum: f64,
    seen: usize,
    /// The learning rate of the latest step.
    lr: f64,
}

/// What a finished epoch's validation produced.
struct Validation {
    outputs: ValidationOutputs,
    metrics: Metrics,
    thresholds: Option<Vec<f32>>,
    predicted: Vec<Vec<usize>>,
}

impl Trainer<'_> {
    /// Trains from `state` (fresh or resumed) to the end, keeping the run directory consistent.
    pub fn train(
        &mut self,
        prepared: &Prepared,
        model: &FusionModel,
        varmap: &VarMap,
        mut state: TrainState,
        optimizer: Option<&OptimizerState>,
    ) -> Result<RunSummary> {
        let whole_config = self.config;
        let config = &whole_config.train;
        let train = &prepared.train;
        let steps_per_epoch = train.dataset.len().div_ceil(config.batch_size);
        let mut learner = Learner {
            model,
            varmap,
            vars: varmap.all_vars(),
            optimizers: Optimizers::new(varmap, config)?,
            schedule: LrSchedule::new(config, steps_per_epoch * config.epochs),
            targets: Targets::of(&train.dataset),
        };
        if let Some(saved) = optimizer {
            learner.optimizers.restore(saved).context("restoring the optimizer's moments")?;
        }
        let token_lengths = train.features.tokens.as_ref().map(|t| t.lengths());
        if state.lr_scale == 0.0 {
            state.lr_scale = 1.0;
        }
        let started = Instant::now() - Duration::from_secs_f64(state.seconds);
        let mut report = self.run.read_report()?;
        if let Some(report) = report.as_mut() {
            // Resumed, or extended after it finished: it runs again.
            report.status = RunStatus::Running;
        }
        let mut progress = Progress { state, report, started };

        for epoch in progress.state.completed_epochs + 1..=config.epochs {
            let mut tally =
                EpochTally { epoch, started: Instant::now(), loss_sum: 0.0, seen: 0, lr: 0.0 };
            let order = epoch_order(
                train.dataset.len(),
                config.batch_size,
                config.seed,
                epoch,
                token_lengths.as_deref(),
            );
            for indices in order {
                if self.stop.is_requested() {
                    return self.stop_now(progress, epoch);
                }
                self.step(&mut learner, &train.features, &indices, &mut tally, &mut progress)?;
            }
            if self.end_epoch(&learner, prepared, tally, &mut progress)? {
                break;
            }
        }
        self.finish(progress)
    }

    /// One optimisation step on the samples at `indices`. A loss that is not finite ends
    /// the run as failed.
    fn step(
        &mut self,
        learner: &mut Learner,
        features: &crate::features::Features,
        indices: &[usize],
        tally: &mut EpochTally,
        progress: &mut Progress,
    ) -> Result<()> {
        let step_started = Instant::now();
        let lr = learner.schedule.at(progress.state.global_step, progress.state.lr_scale);
        learner.optimizers.set_learning_rate(lr);
        let batch = batch(features, &learner.targets, indices, self.device)?;
        learner.model.reseed_dropout(progress.state.global_step);
        let (parts, mut grads) = learner.model.loss_and_gradients(&batch)?;
        let loss = parts.total;
        if !loss.is_finite() {
            return Err(self.non_finite_loss(loss, tally.epoch, progress));
        }
        clip_gradients(&mut grads, &learner.vars, self.config.train.grad_clip)?;
        learner.optimizers.step(&grads)?;
        progress.state.global_step += 1;
        tally.loss_sum += f64::from(loss) * indices.len() as f64;
        tally.seen += indices.len();
        tally.lr = lr;
        let components = parts.components.into_iter().collect::<BTreeMap<_, _>>();
        (self.emit)(TrainEvent::Step(StepRecord {
            epoch: tally.epoch,
            global_step: progress.state.global_step,
            loss,
            components,
            lr,
            samples: indices.len(),
            samples_per_second: indices.len() as f64
                / step_started.elapsed().as_secs_f64().max(1e-9),
            device_memory: memory_in_use(self.device),
        }));
        Ok(())
    }

    /// Validates the epoch's model, saves the checkpoints, `state.json`, `report.json`, the
    /// best epoch's predictions and the epoch's row of `metrics.csv`, and tells the world. Returns whether early stopping ends the run here.
    fn end_epoch(
        &mut self,
        learner: &Learner,
        prepared: &Prepared,
        tally: EpochTally,
        progress: &mut Progress,
    ) -> Result<bool> {
        let whole_config = self.config;
        let config = &whole_config.train;
        let epoch = tally.epoch;
        let val_split = &prepared.validation;
        let val_targets = Targets::of(&val_split.dataset);
        let validation = self.validate(learner.model, val_split, &val_targets)?;
        let selection = validation.metrics.selection_score();
        let state = &mut progress.state;
        let is_best = state.best_epoch == 0 || selection > state.best_score;
        if is_best {
            state.best_score = selection;
            state.best_epoch = epoch;
            state.epochs_without_improvement = 0;
            progress.report = Some(self.report_for(&validation, epoch, prepared));
            self.run.write_predictions(&predictions(
                &val_split.dataset.space.labels,
                &val_split.dataset.samples,
                &validation.outputs.probabilities,
                &validation.predicted,
            ))?;
        } else {
            state.epochs_without_improvement += 1;
        }
        state.lr_scale =
            plateau_scale(config.schedule, state.lr_scale, state.epochs_without_improvement);
        state.completed_epochs = epoch;
        state.seconds = progress.started.elapsed().as_secs_f64();
        // Each file is replaced atomically, in an order where a crash between two writes
        // leaves a run that resumes from `last` exactly (`last` carries its own state).
        if is_best {
            save_checkpoint(&self.run.best_checkpoint(), learner.varmap, state, None)
                .context("saving best checkpoint")?;
            (self.emit)(TrainEvent::CheckpointSaved {
                epoch,
                path: self.run.best_checkpoint(),
                best: true,
            });
        }
        let current = progress.report.as_mut().expect("the first epoch is always the best so far");
        current.epochs_run = epoch;
        current.seconds = state.seconds;
        write_json(&self.run.report(), current)?;
        let moments = learner.optimizers.state()?;
        save_checkpoint(&self.run.last_checkpoint(), learner.varmap, state, Some(&moments))
            .context("saving last checkpoint")?;
        write_json(&self.run.state(), state)?;

        let record = EpochRecord {
            epoch,
            train_loss: (tally.loss_sum / tally.seen.max(1) as f64) as f32,
            val_loss: validation.outputs.loss,
            gates: validation
                .outputs
                .gates
                .as_ref()
                .map(|g| gate_usage(g, &val_targets.labels, val_split.dataset.space.len())),
            misclassified: misclassified(
                &val_split.dataset.samples,
                &val_split.features.images,
                &validation.outputs.probabilities,
                &validation.predicted,
                config.max_misclassified,
            ),
            metrics: validation.metrics,
            thresholds: validation.thresholds,
            is_best,
            seconds: tally.started.elapsed().as_secs_f64(),
        };
        self.run.append_epoch(&EpochRow::new(&record, Some(tally.lr)))?;
        (self.emit)(TrainEvent::Epoch(Box::new(record)));
        let early_stop = config.patience > 0 && state.epochs_without_improvement >= config.patience;
        if early_stop {
            (self.emit)(TrainEvent::Stage {
                name: "early stop".into(),
                detail: format!(
                    "no improvement for {} epochs; best epoch {}",
                    state.epochs_without_improvement, state.best_epoch
                ),
            });
        }
        Ok(early_stop)
    }

    /// The run ran all its epochs (or stopped early): the report says `finished`.
    fn finish(&mut self, progress: Progress) -> Result<RunSummary> {
        let mut report =
            progress.report.context("no epoch was run: train.epochs is 0 or already reached")?;
        report.status = RunStatus::Finished;
        write_json(&self.run.report(), &report)?;
        let state = &progress.state;
        Ok(RunSummary {
            run_dir: self.run.path.clone(),
            best_epoch: state.best_epoch,
            epochs_run: state.completed_epochs,
            macro_f1: report.macro_f1,
            weighted_f1: report.weighted_f1,
            seconds: progress.started.elapsed().as_secs_f64(),
        })
    }

    /// The failure path of the NaN guard: the report says `failed`, the last completed
    /// epoch's checkpoint is left as it is, and the error says what to try.
    fn non_finite_loss(&self, loss: f32, epoch: usize, progress: &mut Progress) -> anyhow::Error {
        let state = &progress.state;
        let kept = if state.completed_epochs > 0 {
            format!(
                "the weights after epoch {} are kept in {}",
                state.completed_epochs,
                self.run.last_checkpoint().display()
            )
        } else {
            "no epoch had completed, so there is no checkpoint".to_string()
        };
        let message = format!(
            "training loss became {loss} at epoch {epoch}, step {}; the run stopped \
             ({kept}). Try a lower train.lr",
            state.global_step + 1
        );
        if let Some(report) = progress.report.as_mut() {
            report.status = RunStatus::Failed;
            if let Err(error) = write_json(&self.run.report(), report) {
                return error;
            }
        }
        anyhow!(message)
    }

    /// Honours a stop request: the checkpoint, `state.json` and the report stay those of
    /// the last completed epoch (the report now says `stopped`), so a resume redoes the
    /// interrupted epoch from there, exactly as it would have run.
    fn stop_now(&mut self, progress: Progress, epoch: usize) -> Result<RunSummary> {
        self.stop.honour();
        let state = &progress.state;
        let report = progress.report;
        if let Some(mut report) = report.clone() {
            report.status = RunStatus::Stopped;
            write_json(&self.run.report(), &report)?;
        }
        (self.emit)(TrainEvent::Stopped {
            epoch,
            reason: format!("stop requested during epoch {epoch}"),
        });
        Ok(RunSummary {
            run_dir: self.run.path.clone(),
            best_epoch: state.best_epoch,
            epochs_run: state.completed_epochs,
            macro_f1: report.as_ref().map_or(0.0, |r| r.macro_f1),
            weighted_f1: report.as_ref().map_or(0.0, |r| r.weighted_f1),
            seconds: progress.started.elapsed().as_secs_f64(),
        })
    }

    fn validate(
        &self,
        model: &FusionModel,
        split: &Split,
        targets: &Targets,
    ) -> Result<Validation> {
        let batch_size = self.config.train.batch_size.max(64);
        let outputs = validation_outputs(model, &split.features, targets, batch_size, self.device)?;
        let thresholds = targets.multi_label.then(|| {
            validation_thresholds(&outputs.probabilities, &targets.labels, targets.num_labels)
        });
        let predicted = decide(&outputs.probabilities, targets.multi_label, thresholds.as_deref());
        let metrics = score(&split.dataset.space, &targets.labels, &predicted);
        Ok(Validation { outputs, metrics, thresholds, predicted })
    }

    fn report_for(&self, validation: &Validation, epoch: usize, prepared: &Prepared) -> Report {
        let space = &prepared.train.dataset.space;
        Report {
            dataset: space.name.clone(),
            labels: space.labels.clone(),
            multi_label: space.multi_label,
            best_epoch: epoch,
            macro_f1: validation.metrics.macro_f1,
            weighted_f1: validation.metrics.weighted_f1,
            per_class: validation.metrics.per_class.clone(),
            metrics: validation.metrics.clone(),
            thresholds: validation.thresholds.clone(),
            epochs_run: epoch,
            seconds: 0.0,
            status: RunStatus::Running,
        }
    }
}
