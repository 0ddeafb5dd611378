//! Everything a run needs before its first step: datasets, the validation split, features.

use std::path::Path;

use anyhow::{Context, Result};
use candle_core::Device;

use crate::config::Config;
use crate::data::{stratified_split, Dataset};
use crate::events::TrainEvent;
use crate::features::{featurize, FeatureReport, Features};

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
    let full = Dataset::load(&data.train, data.format)?;
    emit(TrainEvent::Stage {
        name: "data".into(),
        detail: format!("{} samples from {}", full.len(), data.train.display()),
    });
    let images_dir = data.images.as_deref();
    let (features, report) = featurize(config, &full, images_dir, device, emit)?;
    let (train, validation) = match &data.validation {
        Some(path) => {
            let validation = Dataset::load(path, data.format)?;
            let (val_features, val_report) =
                featurize(config, &validation, images_dir, device, emit)?;
            let report = FeatureReport {
                masked_images: report.masked_images + val_report.masked_images,
                ..report.clone()
            };
            let train = Split { dataset: full, features };
            let validation = Split { dataset: validation, features: val_features };
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

/// Loads a labelled file for evaluation with a run's configuration.
pub fn prepare_eval(
    config: &Config,
    path: &Path,
    images_dir: Option<&Path>,
    device: &Device,
    emit: &mut dyn FnMut(TrainEvent),
) -> Result<Split> {
    let dataset = Dataset::load(path, config.data.format)
        .with_context(|| format!("loading evaluation data {}", path.display()))?;
    let (features, _) = featurize(config, &dataset, images_dir, device, emit)?;
    Ok(Split { dataset, features })
}
