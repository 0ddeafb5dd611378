//! Everything a run needs before its first step: datasets, the validation split, features.

use std::path::Path;

use anyhow::{Context, Result};
use candle_core::Device;

use super::load::load_data;
use crate::config::Config;
use crate::data::{stratified_split, Dataset};
use crate::events::TrainEvent;
use crate::features::{featurize_samples, FeatureReport, Features};

/// One side of the split: its samples and their features.
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
    let images_dir = data.images.as_deref();
    let full = load_data(config, &data.train, images_dir, emit)?;
    emit(TrainEvent::Stage {
        name: "data".into(),
        detail: format!("{} samples from {}", full.dataset.len(), data.train.display()),
    });
    let (features, report) = featurize_samples(config, &full.feature_input(), device, emit)?;
    let full = full.dataset;
    let (train, validation) = match &data.validation {
        Some(path) => {
            let validation = load_data(config, path, images_dir, emit)?;
            let (val_features, val_report) =
                featurize_samples(config, &validation.feature_input(), device, emit)?;
            let report = FeatureReport {
                masked_images: report.masked_images + val_report.masked_images,
                ..report.clone()
            };
            let train = Split { dataset: full, features };
            let validation = Split { dataset: validation.dataset, features: val_features };
            return Ok(Prepared { train, validation, report });
        }
        None => {
            let (train_idx, val_idx) = stratified_split(&full, data.val_fraction, data.split_seed);
            emit(TrainEvent::Stage {
                name: "split".into(),
                detail: format!(
                    "stratified split (seed {}): {} train, {} validation",
                    data.split_seed,
                    train_idx.len(),
                    val_idx.len()
                ),
            });
            let side = |idx: &[usize]| -> Result<Split> {
                Ok(Split { dataset: full.subset(idx), features: features.select(idx)? })
            };
            (side(&train_idx)?, side(&val_idx)?)
        }
    };
    Ok(Prepared { train, validation, report })
}

/// Loads a labelled file for evaluation with a run's configuration (OCR included).
pub fn prepare_eval(
    config: &Config,
    path: &Path,
    images_dir: Option<&Path>,
    device: &Device,
    emit: &mut dyn FnMut(TrainEvent),
) -> Result<Split> {
    let data = load_data(config, path, images_dir, emit)
        .with_context(|| format!("loading evaluation data {}", path.display()))?;
    let (features, _) = featurize_samples(config, &data.feature_input(), device, emit)?;
    Ok(Split { dataset: data.dataset, features })
}
