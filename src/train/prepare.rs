//! Everything a run needs before its first step: datasets, the validation split, features.

use std::path::Path;

use anyhow::{Context, Result};
use candle_core::Device;

use super::load::load_dataset;
use crate::config::Config;
use crate::data::{stratified_split, Dataset};
use crate::events::TrainEvent;
use crate::features::{featurize_samples, FeatureReport, Features};

/// One side of the split: its samples and their features (cloning shares the tensors).
#[derive(Clone)]
pub struct Split {
    pub dataset: Dataset,
    pub features: Features,
}

pub struct Prepared {
    pub train: Split,
    pub validation: Split,
    pub report: FeatureReport,
}

pub fn prepare(
    config: &Config,
    device: &Device,
    emit: &mut dyn FnMut(TrainEvent),
) -> Result<Prepared> {
    let data = &config.data;
    let full = load_train(config, device, emit)?;
    match &data.validation {
        Some(path) => {
            let validation = load_dataset(config, path, data.images.as_deref(), emit)?;
            let (val_features, val_report) =
                featurize_samples(config, &validation.feature_input(), device, emit)?;
            let report = FeatureReport {
                masked_images: full.report.masked_images + val_report.masked_images,
                ..full.report.clone()
            };
            let train = Split { dataset: full.dataset, features: full.features };
            let validation = Split { dataset: validation.dataset, features: val_features };
            Ok(Prepared { train, validation, report })
        }
        None => {
            let (train_idx, val_idx) =
                stratified_split(&full.dataset, data.val_fraction, data.split_seed);
            emit(TrainEvent::Stage {
                name: "split".into(),
                detail: format!(
                    "stratified split (seed {}): {} train, {} validation",
                    data.split_seed,
                    train_idx.len(),
                    val_idx.len()
                ),
            });
            full.split(&train_idx, &val_idx)
        }
    }
}

/// The configured training file with its features, before any split.
pub struct FeaturizedTrainFile {
    pub dataset: Dataset,
    pub features: Features,
    pub report: FeatureReport,
}

impl FeaturizedTrainFile {
    /// A train/validation split of this file by explicit sample indices (cross-validation
    /// folds, or the seeded stratified split).
    pub fn split(&self, train_idx: &[usize], val_idx: &[usize]) -> Result<Prepared> {
        Ok(Prepared {
            train: self.side(train_idx)?,
            validation: self.side(val_idx)?,
            report: self.report.clone(),
        })
    }

    /// The samples at `indices`, with their features.
    pub fn side(&self, indices: &[usize]) -> Result<Split> {
        Ok(Split {
            dataset: self.dataset.subset(indices),
            features: self.features.select(indices)?,
        })
    }
}

/// Loads `data.train` and computes (or fetches from the cache) its features.
pub fn load_train(
    config: &Config,
    device: &Device,
    emit: &mut dyn FnMut(TrainEvent),
) -> Result<FeaturizedTrainFile> {
    let data = &config.data;
    let loaded = load_dataset(config, &data.train, data.images.as_deref(), emit)?;
    emit(TrainEvent::Stage {
        name: "data".into(),
        detail: format!("{} samples from {}", loaded.dataset.len(), data.train.display()),
    });
    let (features, report) = featurize_samples(config, &loaded.feature_input(), device, emit)?;
    Ok(FeaturizedTrainFile { dataset: loaded.dataset, features, report })
}

/// Loads a labelled file for evaluation with a run's configuration (OCR included).
pub fn prepare_eval(
    config: &Config,
    path: &Path,
    images_dir: Option<&Path>,
    device: &Device,
    emit: &mut dyn FnMut(TrainEvent),
) -> Result<Split> {
    let data = load_dataset(config, path, images_dir, emit)
        .with_context(|| format!("loading evaluation data {}", path.display()))?;
    let (features, _) = featurize_samples(config, &data.feature_input(), device, emit)?;
    Ok(Split { dataset: data.dataset, features })
}
