//! Projects each exposed encoder layer of one modality into the shared fusion width.
//!
//! Layers of a frozen encoder live in different feature spaces (lower layers are more
//! lexical, upper ones more semantic), so each layer gets its own linear map; a shared
//! layer norm then puts text and image tokens on the same scale before they meet.

use std::collections::HashMap;

use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

use super::layers::{linear, Dropout, LayerNorm, Linear};

/// `(layers, input width)` of the projection saved under `prefix` in `weights`, or `None`
/// when the checkpoint has no such projection (that modality was not used).
pub fn input_shape(
    weights: &HashMap<String, Tensor>,
    prefix: &str,
) -> Result<Option<(usize, usize)>> {
    let weight = |layer: usize| weights.get(&format!("{prefix}.{}.weight", layer_name(layer)));
    let Some(first) = weight(0) else {
        return Ok(None);
    };
    let (_, width) = first.dims2()?;
    let layers = (0..).take_while(|&layer| weight(layer).is_some()).count();
    Ok(Some((layers, width)))
}

fn layer_name(layer: usize) -> String {
    format!("layer{layer}")
}

#[derive(Debug, Clone)]
pub struct LayerProjection {
    per_layer: Vec<Linear>,
    norm: LayerNorm,
    dropout: Dropout,
    input_dim: usize,
}

impl LayerProjection {
    pub fn new(
        layers: usize,
        input_dim: usize,
        fusion_dim: usize,
        dropout: Dropout,
        vb: VarBuilder,
    ) -> Result<Self> {
        if layers == 0 || input_dim == 0 {
            candle_core::bail!("a projected modality needs at least one layer of width > 0");
        }
        let per_layer = (0..layers)
            .map(|layer| linear(input_dim, fusion_dim, vb.pp(layer_name(layer))))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { per_layer, norm: LayerNorm::new(fusion_dim, vb.pp("norm"))?, dropout, input_dim })
    }

    /// `(B, layers, input_dim)` → `(B, layers, fusion_dim)`.
    pub fn forward(&self, features: &Tensor, train: bool) -> Result<Tensor> {
        let (_, layers, width) = features.dims3()?;
        if layers != self.per_layer.len() || width != self.input_dim {
            candle_core::bail!(
                "features have {layers} layers of width {width}, the model was built for {} of \
                 width {}",
                self.per_layer.len(),
                self.input_dim
            );
        }
        let projected = self
            .per_layer
            .iter()
            .enumerate()
            .map(|(layer, proj)| proj.forward(&features.narrow(1, layer, 1)?))
            .collect::<Result<Vec<_>>>()?;
        let projected = Tensor::cat(&projected, 1)?;
        self.dropout.forward(&self.norm.forward(&projected)?, train)
    }
}
