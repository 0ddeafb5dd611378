//! Building a run's model: the fusion head for the features' shapes, with seeded initial
//! weights, and the pretrained top text-encoder layers (found on disk or in the hub cache)
//! when they are fine-tuned.

use anyhow::Result;
use candle_core::Device;
use candle_nn::VarMap;

use crate::config::Config;
use crate::encoders::resolve_model;
use crate::model::{seeded_var_builder, FeatureDims, FusionModel, TextTop};

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
/// under [`crate::model::TEXT_TOP`] in the `VarMap`) in front when the model reads text.
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
    )?
    .with_compute_dtype(config.train.precision.compute_dtype(device));
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
