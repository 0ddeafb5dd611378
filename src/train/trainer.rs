//! The epoch loop: AdamW with warmup/decay, gradient clipping, validation each epoch,
//! best-checkpoint selection by the harmonic mean of macro- and weighted-F1, early
//! stopping, NaN guard, and cooperative stopping at step boundaries.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Var};
use candle_nn::{Optimizer, ParamsAdamW, VarMap};

use super::adamw::FusedAdamW;
use super::batches::{batch, epoch_order, Targets};
use super::evaluate::{decide, gate_usage, misclassified, predict, score, Predictions};
use super::prepare::{Prepared, Split};
use super::report::{Report, TrainState};
use super::run_dir::{write_json, RunDir};
use super::schedule::{plateau_scale, LrSchedule};
use super::StopFlag;
use crate::config::Config;
use crate::encoders::resolve_model;
use crate::events::{EpochRecord, RunSummary, StepRecord, TrainEvent};
use crate::metrics::{best_thresholds, Metrics};
use crate::model::{seeded_var_builder, FeatureDims, FusionModel, TextTop, LEXICAL, TEXT_TOP};

/// Builds the fusion model for `prepared` features, with seeded initial weights.
pub fn build_model(
    config: &Config,
    features: &crate::features::Features,
    num_labels: usize,
    multi_label: bool,
    device: &Device,
) -> Result<(FusionModel, VarMap)> {
    let mut dims = features.dims()?;
    if let Some(tokens) = &features.tokens {
        // The fine-tuned layers pool their own text stream, as many layers as configured.
        dims.text = Some((config.text_encoder.layers, tokens.hidden()));
    }
    build_model_for(config, dims, num_labels, multi_label, device)
}

/// Builds the fusion model for features of shape `dims`, with seeded initial weights, and
/// with the text encoder's top `text_encoder.finetune_layers` layers (pretrained weights,
/// under [`TEXT_TOP`] in the `VarMap`) in front when the model reads text.
pub fn build_model_for(
    config: &Config,
    dims: FeatureDims,
    num_labels: usize,
    multi_label: bool,
    device: &Device,
) -> Result<(FusionModel, VarMap)> {
    let varmap = VarMap::new();
    let vb = seeded_var_builder(&varmap, config.train.seed, device);
    let model = FusionModel::new(
        vb,
        &config.model,
        &config.ablation,
        dims,
        num_labels,
        multi_label,
        config.train.seed,
    )?;
    let finetune = config.text_encoder.finetune_layers;
    let model = match dims.text {
        Some(_) if finetune > 0 => {
            let settings = &config.text_encoder;
            let files = resolve_model(&settings.model, true)?;
            let top = TextTop::pretrained(
                &files,
                finetune,
                settings.layers,
                settings.pooling,
                &varmap,
                device,
            )?;
            model.with_text_top(top)?
        }
        _ => model,
    };
    Ok((model, varmap))
}

pub struct Trainer<'a> {
    pub config: &'a Config,
    pub run: &'a RunDir,
    pub device: &'a Device,
    pub stop: &'a StopFlag,
    pub emit: &'a mut dyn FnMut(TrainEvent),
}

/// What a finished epoch's validation produced.
struct Validation {
    predictions: Predictions,
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
    ) -> Result<RunSummary> {
        let config = self.config;
        let train = &prepared.train;
        let targets = Targets::of(&train.dataset);
        let val_targets = Targets::of(&prepared.validation.dataset);
        let batch_size = config.train.batch_size;
        let steps_per_epoch = train.dataset.len().div_ceil(batch_size);
        let schedule = LrSchedule::new(&config.train, steps_per_epoch * config.train.epochs);
        let vars = varmap.all_vars();
        let token_lengths = train.features.tokens.as_ref().map(|t| t.lengths());
        let lengths = token_lengths.as_deref();
        let mut optimizers = Optimizers::new(varmap, &config.train)?;
        if state.lr_scale == 0.0 {
            state.lr_scale = 1.0;
        }
        let started = Instant::now() - std::time::Duration::from_secs_f64(state.seconds);
        let mut report = self.load_report()?;

        for epoch in state.completed_epochs + 1..=config.train.epochs {
            let epoch_started = Instant::now();
            let mut loss_sum = 0.0f64;
            let mut seen = 0usize;
            let order =
                epoch_order(train.dataset.len(), batch_size, config.train.seed, epoch, lengths);
            for indices in order {
                if self.stop.is_requested() {
                    return self.stop_now(varmap, &mut state, report, epoch, started);
                }
                let step_started = Instant::now();
                let lr = schedule.at(state.global_step, state.lr_scale);
                optimizers.set_learning_rate(lr);
                let batch = batch(&train.features, &targets, &indices, self.device)?;
                let output = model.forward(&batch, true)?;
                let parts = model.loss(&output, &batch)?;
                let loss = parts.total.to_scalar::<f32>()?;
                if !loss.is_finite() {
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
                    if let Some(report) = report.as_mut() {
                        report.status = "failed".into();
                        write_json(&self.run.report(), report)?;
                    }
                    bail!(message);
                }
                let mut grads = parts.total.backward()?;
                clip_gradients(&mut grads, &vars, config.train.grad_clip)?;
                optimizers.step(&grads)?;
                state.global_step += 1;
                loss_sum += f64::from(loss) * indices.len() as f64;
                seen += indices.len();
                let mut components = BTreeMap::new();
                for (name, value) in &parts.components {
                    components.insert(name.clone(), value.to_scalar::<f32>()?);
                }
                (self.emit)(TrainEvent::Step(StepRecord {
                    epoch,
                    global_step: state.global_step,
                    loss,
                    components,
                    lr,
                    samples_per_second: indices.len() as f64
                        / step_started.elapsed().as_secs_f64().max(1e-9),
                }));
            }

            let validation = self.validate(model, &prepared.validation, &val_targets)?;
            let selection = validation.metrics.selection_score();
            let is_best = state.best_epoch == 0 || selection > state.best_score;
            if is_best {
                state.best_score = selection;
                state.best_epoch = epoch;
                state.epochs_without_improvement = 0;
                varmap.save(self.run.best_checkpoint()).context("saving best checkpoint")?;
                (self.emit)(TrainEvent::CheckpointSaved {
                    epoch,
                    path: self.run.best_checkpoint(),
                    best: true,
                });
                report = Some(self.report_for(&validation, epoch, prepared));
            } else {
                state.epochs_without_improvement += 1;
            }
            state.lr_scale = plateau_scale(
                config.train.schedule,
                state.lr_scale,
                state.epochs_without_improvement,
            );
            state.completed_epochs = epoch;
            state.seconds = started.elapsed().as_secs_f64();
            varmap.save(self.run.last_checkpoint()).context("saving last checkpoint")?;
            write_json(&self.run.state(), &state)?;
            let current = report.as_mut().expect("the first epoch is always the best so far");
            current.epochs_run = epoch;
            current.seconds = state.seconds;
            write_json(&self.run.report(), current)?;

            let val_split = &prepared.validation;
            (self.emit)(TrainEvent::Epoch(Box::new(EpochRecord {
                epoch,
                train_loss: (loss_sum / seen.max(1) as f64) as f32,
                val_loss: validation.predictions.loss,
                gates: validation
                    .predictions
                    .gates
                    .as_ref()
                    .map(|g| gate_usage(g, &val_targets.labels, val_split.dataset.space.len())),
                misclassified: misclassified(
                    &val_split.dataset.samples,
                    &val_split.features.images,
                    &validation.predictions.probabilities,
                    &validation.predicted,
                    config.train.max_misclassified,
                ),
                metrics: validation.metrics,
                thresholds: validation.thresholds,
                is_best,
                seconds: epoch_started.elapsed().as_secs_f64(),
            })));
            if config.train.patience > 0
                && state.epochs_without_improvement >= config.train.patience
            {
                (self.emit)(TrainEvent::Stage {
                    name: "early stop".into(),
                    detail: format!(
                        "no improvement for {} epochs; best epoch {}",
                        state.epochs_without_improvement, state.best_epoch
                    ),
                });
                break;
            }
        }
        let mut report =
            report.context("no epoch was run: train.epochs is 0 or already reached")?;
        report.status = "finished".into();
        write_json(&self.run.report(), &report)?;
        Ok(RunSummary {
            run_dir: self.run.path.clone(),
            best_epoch: state.best_epoch,
            epochs_run: state.completed_epochs,
            macro_f1: report.macro_f1,
            weighted_f1: report.weighted_f1,
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    fn validate(
        &self,
        model: &FusionModel,
        split: &Split,
        targets: &Targets,
    ) -> Result<Validation> {
        let batch_size = self.config.train.batch_size.max(64);
        let predictions = predict(model, &split.features, targets, batch_size, self.device)?;
        let thresholds = targets.multi_label.then(|| {
            let truth: Vec<Vec<bool>> = targets
                .labels
                .iter()
                .map(|set| (0..targets.num_labels).map(|c| set.contains(&c)).collect())
                .collect();
            best_thresholds(&predictions.probabilities, &truth)
        });
        let predicted =
            decide(&predictions.probabilities, targets.multi_label, thresholds.as_deref());
        let metrics = score(&split.dataset.space, &targets.labels, &predicted);
        Ok(Validation { predictions, metrics, thresholds, predicted })
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
            status: "running".into(),
        }
    }

    fn load_report(&self) -> Result<Option<Report>> {
        let path = self.run.report();
        Ok(if path.exists() { Some(super::run_dir::read_json(&path)?) } else { None })
    }

    /// Honours a stop request: the weights of the interrupted epoch are saved as `last`,
    /// the state still points at the last completed epoch, so a resume redoes that epoch.
    fn stop_now(
        &mut self,
        varmap: &VarMap,
        state: &mut TrainState,
        report: Option<Report>,
        epoch: usize,
        started: Instant,
    ) -> Result<RunSummary> {
        state.seconds = started.elapsed().as_secs_f64();
        write_json(&self.run.state(), state)?;
        if state.completed_epochs == 0 {
            // Nothing validated yet: keep these weights so the run can be inspected.
            varmap.save(self.run.last_checkpoint()).context("saving last checkpoint")?;
        }
        if let Some(mut report) = report.clone() {
            report.status = "stopped".into();
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
            seconds: state.seconds,
        })
    }
}

/// One AdamW per parameter group, each at its own rate: the fusion head at `train.lr`, the
/// fine-tuned text-encoder layers at `train.encoder_lr` (pretrained weights need far smaller
/// steps than fresh ones), and the lexical expert at `train.lexical_lr` (a linear model over
/// sparse n-grams, which at the head's rate stays far from the solution a logistic
/// regression reaches, within the few epochs the dense head needs). All follow the same
/// schedule; gradients are clipped by one global norm before any step.
struct Optimizers {
    /// Each group's optimizer and its rate relative to `train.lr`.
    groups: Vec<(FusedAdamW, f64)>,
}

impl Optimizers {
    fn new(varmap: &VarMap, train: &crate::config::TrainConfig) -> Result<Self> {
        let mut by_rate: Vec<(f64, Vec<Var>)> = Vec::new();
        for (name, var) in varmap.data().lock().expect("VarMap lock poisoned").iter() {
            let lr = learning_rate_of(name, train);
            match by_rate.iter_mut().find(|(rate, _)| *rate == lr) {
                Some((_, vars)) => vars.push(var.clone()),
                None => by_rate.push((lr, vec![var.clone()])),
            }
        }
        let mut groups = Vec::new();
        for (lr, vars) in by_rate {
            let params = ParamsAdamW { lr, weight_decay: train.weight_decay, ..Default::default() };
            let ratio = if train.lr > 0.0 { lr / train.lr } else { 0.0 };
            groups.push((FusedAdamW::new(vars, params)?, ratio));
        }
        Ok(Self { groups })
    }

    /// `lr` is the head's current rate.
    fn set_learning_rate(&mut self, lr: f64) {
        for (optimizer, ratio) in &mut self.groups {
            optimizer.set_learning_rate(lr * *ratio);
        }
    }

    fn step(&mut self, grads: &GradStore) -> Result<()> {
        for (optimizer, _) in &mut self.groups {
            optimizer.step(grads)?;
        }
        Ok(())
    }
}

/// The base learning rate of the variable called `name`: the fine-tuned encoder layers'
/// (`text_top.…`), every ensemble member's lexical expert (`lexical.…`, `member2.lexical.…`),
/// or the head's.
fn learning_rate_of(name: &str, train: &crate::config::TrainConfig) -> f64 {
    if name.split('.').next() == Some(TEXT_TOP) {
        train.encoder_lr
    } else if name.split('.').any(|part| part == LEXICAL) {
        train.lexical_lr
    } else {
        train.lr
    }
}

/// Scales all gradients so that their global L2 norm is at most `max_norm`.
fn clip_gradients(grads: &mut GradStore, vars: &[Var], max_norm: f64) -> Result<()> {
    if max_norm <= 0.0 {
        return Ok(());
    }
    let mut total = 0.0f64;
    for var in vars {
        if let Some(grad) = grads.get(var) {
            total += f64::from(grad.sqr()?.sum_all()?.to_dtype(DType::F32)?.to_scalar::<f32>()?);
        }
    }
    let norm = total.sqrt();
    if norm > max_norm {
        let scale = max_norm / (norm + 1e-6);
        for var in vars {
            if let Some(grad) = grads.remove(var) {
                grads.insert(var, (grad * scale)?);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_variable_trains_at_its_groups_rate() {
        let train = crate::config::TrainConfig {
            lr: 1e-3,
            encoder_lr: 5e-5,
            lexical_lr: 3e-2,
            ..Default::default()
        };
        for (name, lr) in [
            ("text_top.0.attention.query.weight", 5e-5),
            ("lexical.weight", 3e-2),
            ("member2.lexical.weight", 3e-2),
            ("classifier.head.weight", 1e-3),
            ("member1.classifier.head.weight", 1e-3),
            ("text_projection.0.weight", 1e-3),
        ] {
            assert_eq!(learning_rate_of(name, &train), lr, "{name}");
        }
    }
}
