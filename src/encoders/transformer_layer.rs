//! The post-norm transformer block of BERT (Devlin et al., 2019), which RoBERTa and MPNet
//! share: self-attention with a residual and layer norm, then a feed-forward with a
//! residual and layer norm. Families differ in what they add to the attention scores (a
//! padding mask only, or also MPNet's relative position bias) and in their tensor names,
//! so the scores' bias is an input and the names are a [`LayerNames`].

use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

use super::ops::{self, Activation, LayerNorm, Linear, Mode};

/// The sizes of one block, from the checkpoint's `config.json`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LayerShape {
    pub hidden: usize,
    pub intermediate: usize,
    pub heads: usize,
    pub activation: Activation,
    pub layer_norm_eps: f64,
}

impl LayerShape {
    /// Heads must split the width evenly; `config.json` files that say otherwise are refused
    /// before any tensor is read.
    pub fn check_heads(hidden: usize, heads: usize) -> anyhow::Result<()> {
        if heads == 0 || !hidden.is_multiple_of(heads) {
            anyhow::bail!("hidden_size {hidden} is not a multiple of num_attention_heads {heads}");
        }
        Ok(())
    }
}

/// Where a checkpoint keeps each tensor of one block, relative to the block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerNames {
    pub query: &'static str,
    pub key: &'static str,
    pub value: &'static str,
    /// The projection of the attention's output.
    pub attention_output: &'static str,
    pub attention_norm: &'static str,
    pub intermediate: &'static str,
    pub output: &'static str,
    pub output_norm: &'static str,
}

struct SelfAttention {
    query: Linear,
    key: Linear,
    value: Linear,
    output: Linear,
    norm: LayerNorm,
    heads: usize,
}

impl SelfAttention {
    fn forward(&self, hidden: &Tensor, bias: &Tensor, mode: Mode) -> Result<Tensor> {
        let query = ops::split_heads(&self.query.forward(hidden)?, self.heads)?;
        let key = ops::split_heads(&self.key.forward(hidden)?, self.heads)?;
        let value = ops::split_heads(&self.value.forward(hidden)?, self.heads)?;
        let context = ops::merge_heads(&ops::attention(&query, &key, &value, Some(bias), mode)?)?;
        let projected = self.output.forward(&context)?;
        self.norm.forward(&(projected + hidden)?, mode)
    }
}

/// One transformer block (no dropout: encoders here run frozen, or fine-tune a few top
/// layers on cached activations).
pub struct TransformerLayer {
    attention: SelfAttention,
    intermediate: Linear,
    activation: Activation,
    output: Linear,
    norm: LayerNorm,
}

impl TransformerLayer {
    /// Builds the block from the tensors under `vb` named by `names`, or creates them when
    /// `vb` is backed by a `VarMap`.
    pub fn load(vb: VarBuilder, shape: &LayerShape, names: &LayerNames) -> Result<Self> {
        let (hidden, inner, eps) = (shape.hidden, shape.intermediate, shape.layer_norm_eps);
        Ok(Self {
            attention: SelfAttention {
                query: Linear::load(hidden, hidden, vb.pp(names.query))?,
                key: Linear::load(hidden, hidden, vb.pp(names.key))?,
                value: Linear::load(hidden, hidden, vb.pp(names.value))?,
                output: Linear::load(hidden, hidden, vb.pp(names.attention_output))?,
                norm: LayerNorm::load(hidden, eps, vb.pp(names.attention_norm))?,
                heads: shape.heads,
            },
            intermediate: Linear::load(hidden, inner, vb.pp(names.intermediate))?,
            activation: shape.activation,
            output: Linear::load(inner, hidden, vb.pp(names.output))?,
            norm: LayerNorm::load(hidden, eps, vb.pp(names.output_norm))?,
        })
    }

    /// `bias` is added to the attention scores `(batch, heads, seq, seq)` before the
    /// softmax and broadcasts to them: at least [`ops::attention_bias`] of the padding mask.
    pub fn forward(&self, hidden: &Tensor, bias: &Tensor, mode: Mode) -> Result<Tensor> {
        let attended = self.attention.forward(hidden, bias, mode)?;
        let inner = self.activation.forward(&self.intermediate.forward(&attended)?, mode)?;
        let out = self.output.forward(&inner)?;
        self.norm.forward(&(out + attended)?, mode)
    }
}

/// One block per builder of `layers` (bottom first).
pub fn load_layers(
    layers: Vec<VarBuilder>,
    shape: &LayerShape,
    names: &LayerNames,
) -> Result<Vec<TransformerLayer>> {
    layers.into_iter().map(|vb| TransformerLayer::load(vb, shape, names)).collect()
}

/// Runs `layers` in turn from `hidden`, each with the same score `bias`; returns every
/// layer's output.
pub fn run_layers(
    layers: &[TransformerLayer],
    hidden: &Tensor,
    bias: &Tensor,
    mode: Mode,
) -> Result<Vec<Tensor>> {
    let mut outputs = Vec::with_capacity(layers.len());
    let mut current = hidden.clone();
    for layer in layers {
        current = layer.forward(&current, bias, mode)?;
        outputs.push(current.clone());
    }
    Ok(outputs)
}
