//! A trained run loaded back from its directory: its configuration, its report and the
//! model of its best epoch. `eval` and `predict` both start here.

use std::path::Path;

use anyhow::{bail, Context, Result};
use candle_core::Device;

use super::batches::Targets;
use super::build::build_model_for;
use super::device::select_device;
use super::evaluate::{decide, predictions, probabilities, score};
use super::prepare::Split;
use crate::config::Config;
use crate::data::{Dataset, LabelSpace};
use crate::features::Features;
use crate::metrics::Metrics;
use crate::model::{dims_of_weights, FusionModel};
use crate::runs::{read_json, Prediction, Report, RunDir};

/// Samples per forward pass when scoring.
const BATCH_SIZE: usize = 128;

pub struct TrainedRun {
    pub run: RunDir,
    /// The run's resolved configuration (absolute paths), as it trained.
    pub config: Config,
    pub report: Report,
    pub space: LabelSpace,
    /// The best epoch's weights.
    pub model: FusionModel,
    pub device: Device,
}

/// Opens the run in `run_dir` and rebuilds its best checkpoint. The model's shape is read
/// off the checkpoint itself, so it is exactly the model that trained, whatever features
/// are later given to it (a mismatch is then an error, not a silently smaller model).
pub fn load_trained_run(run_dir: &Path) -> Result<TrainedRun> {
    let run = RunDir::open(run_dir)?;
    let config = run.read_config()?;
    let report: Report = read_json(&run.report())
        .with_context(|| format!("{} has no completed epoch to use", run.path.display()))?;
    let space = config.data.format.label_space();
    if report.labels != space.labels || report.multi_label != space.multi_label {
        bail!(
            "{}: report.json lists labels {:?}, but the run's config is for {} ({:?})",
            run.path.display(),
            report.labels,
            space.name,
            space.labels
        );
    }
    let device = select_device(&config.train.device)?;
    let checkpoint = run.best_checkpoint();
    let weights = candle_core::safetensors::load(&checkpoint, &Device::Cpu)
        .with_context(|| format!("reading {}", checkpoint.display()))?;
    let dims = dims_of_weights(&weights)
        .with_context(|| format!("reading the model's shape from {}", checkpoint.display()))?;
    drop(weights);
    let (model, mut varmap) =
        build_model_for(&config, dims, space.len(), space.multi_label, &device)?;
    varmap.load(&checkpoint).with_context(|| format!("loading {}", checkpoint.display()))?;
    Ok(TrainedRun { run, config, report, space, model, device })
}

impl TrainedRun {
    /// Whether the model reads text features (and so needs each sample's text).
    pub fn reads_text(&self) -> bool {
        self.model.dims().text.is_some()
    }

    /// Whether the model reads image features (and so needs each sample's image).
    pub fn reads_images(&self) -> bool {
        self.model.dims().image.is_some()
    }

    /// Per-label probabilities of every sample of `features`, in order.
    pub fn probabilities(&self, features: &Features) -> Result<Vec<Vec<f32>>> {
        if self.reads_images() && features.image.is_none() {
            bail!(
                "the model of {} reads images, but these samples have no image features \
                 (give their image folder)",
                self.run.path.display()
            );
        }
        let has_text = match self.model.fine_tunes_text() {
            true => features.tokens.is_some(),
            false => features.text.is_some(),
        };
        if self.reads_text() && !has_text {
            bail!(
                "the model of {} reads text, but these samples have none",
                self.run.path.display()
            );
        }
        probabilities(&self.model, features, BATCH_SIZE, &self.device)
            .with_context(|| format!("scoring with the model of {}", self.run.path.display()))
    }

    /// The labels decided from `probabilities`: the most probable one (single-label), or every
    /// label at or above the threshold chosen on validation (multi-label).
    pub fn decide(&self, probabilities: &[Vec<f32>]) -> Vec<Vec<usize>> {
        decide(probabilities, self.space.multi_label, self.report.thresholds.as_deref())
    }

    /// The metrics, and each sample's prediction, on the labelled samples of `split`.
    pub fn evaluate(&self, split: &Split) -> Result<Evaluation> {
        let probabilities = self.probabilities(&split.features)?;
        let predicted = self.decide(&probabilities);
        Ok(Evaluation::of(&self.space, &split.dataset, &probabilities, &predicted))
    }
}

/// How a run's best checkpoint does on a labelled file.
pub struct Evaluation {
    pub samples: usize,
    pub metrics: Metrics,
    /// One per sample, in the file's order.
    pub predictions: Vec<Prediction>,
}

impl Evaluation {
    /// How the decisions `predicted`, made from `probabilities`, do on the labelled
    /// `dataset` (one row of each per sample, in order).
    pub(super) fn of(
        space: &LabelSpace,
        dataset: &Dataset,
        probabilities: &[Vec<f32>],
        predicted: &[Vec<usize>],
    ) -> Self {
        Self {
            samples: dataset.samples.len(),
            metrics: score(space, &Targets::of(dataset).labels, predicted),
            predictions: predictions(&space.labels, &dataset.samples, probabilities, predicted),
        }
    }
}
