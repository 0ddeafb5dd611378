//! Headless progress: a bar with loss, samples/s and ETA on a terminal, plain log lines
//! otherwise (CI logs, `nohup`, pipes).

use indicatif::{ProgressBar, ProgressStyle};

use crate::events::TrainEvent;

pub struct HeadlessProgress {
    interactive: bool,
    bar: Option<ProgressBar>,
    steps_per_epoch: usize,
    epochs: usize,
    loss_ema: Option<f32>,
}

impl HeadlessProgress {
    pub fn new(interactive: bool) -> Self {
        Self { interactive, bar: None, steps_per_epoch: 0, epochs: 0, loss_ema: None }
    }

    pub fn show(&mut self, event: &TrainEvent) {
        match event {
            TrainEvent::RunStarted(info) => {
                self.steps_per_epoch = info.steps_per_epoch;
                self.epochs = info.epochs;
                self.line(format!(
                    "run {} — {} ({} train / {} validation), {} parameters, device {}",
                    info.run_id,
                    info.dataset,
                    info.train_samples,
                    info.val_samples,
                    info.parameters,
                    info.device
                ));
                if let Some(reason) = &info.text_only_reason {
                    self.line(reason.clone());
                }
                if self.interactive {
                    let bar = ProgressBar::new((info.steps_per_epoch * info.epochs) as u64);
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{bar:30} {pos}/{len} steps  {msg}  {per_sec}  ETA {eta}",
                        )
                        .expect("static template"),
                    );
                    self.bar = Some(bar);
                }
            }
            TrainEvent::Stage { name, detail } => self.line(format!("{name}: {detail}")),
            TrainEvent::Progress { stage, done, total, per_second } => {
                if done == total || !self.interactive {
                    self.line(format!("{stage}: {done}/{total} ({per_second:.1}/s)"));
                }
            }
            TrainEvent::Step(step) => {
                let ema = self.loss_ema.map_or(step.loss, |e| 0.9 * e + 0.1 * step.loss);
                self.loss_ema = Some(ema);
                if let Some(bar) = &self.bar {
                    bar.set_position(step.global_step as u64);
                    bar.set_message(format!("epoch {} loss {ema:.4}", step.epoch));
                } else if self.steps_per_epoch > 0 && step.global_step % self.steps_per_epoch.div_ceil(4).max(1) == 0 {
                    self.line(format!(
                        "epoch {}/{} step {} loss {ema:.4} ({:.0} samples/s)",
                        step.epoch, self.epochs, step.global_step, step.samples_per_second
                    ));
                }
            }
            TrainEvent::Epoch(epoch) => self.line(format!(
                "epoch {}: train loss {:.4}, val loss {:.4}, macro-F1 {:.4}, weighted-F1 {:.4}{} ({:.1}s)",
                epoch.epoch,
                epoch.train_loss,
                epoch.val_loss,
                epoch.metrics.macro_f1,
                epoch.metrics.weighted_f1,
                if epoch.is_best { " *best*" } else { "" },
                epoch.seconds
            )),
            TrainEvent::CheckpointSaved { .. } => {}
            TrainEvent::Finished(summary) => self.line(format!(
                "finished: best epoch {} of {}, macro-F1 {:.4}, weighted-F1 {:.4}, {:.1}s",
                summary.best_epoch, summary.epochs_run, summary.macro_f1, summary.weighted_f1, summary.seconds
            )),
            TrainEvent::Stopped { reason, .. } => self.line(format!("stopped: {reason}")),
            TrainEvent::Failed { message } => self.line(format!("failed: {message}")),
        }
    }

    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }

    fn line(&self, text: String) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }
}
