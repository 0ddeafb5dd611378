//! Building blocks shared by the BERT and CLIP towers, with a switch between candle's fused
//! inference kernels and slower ops that have a backward pass.
//!
//! candle's fused `layer_norm` and `softmax_last_dim` are built without a backward, so a
//! graph through them silently yields no gradients (see docs/candle-notes.md). Frozen
//! encoding wants the fused kernels for speed; partial fine-tuning wants gradients. Every
//! layer takes its ops from here so that one [`Mode`] flag decides for the whole model.

use candle_core::{DType, Module, Result, Tensor, D};
use candle_nn::{Init, VarBuilder};

use super::fused_rows::normalize_last;
use super::row_ops::{add_bias_in_place, scale_shift};

/// Runs `f` on `xs` in f32 and returns its result in `xs`'s dtype. Mixed precision
/// (`train.precision = "bf16"`) keeps the reductions whose rounding would hurt — layer-norm
/// statistics, softmax — in f32, as autocast does; for f32 inputs both casts are no-ops.
pub fn in_f32(xs: &Tensor, f: impl FnOnce(&Tensor) -> Result<Tensor>) -> Result<Tensor> {
    f(&xs.to_dtype(DType::F32)?)?.to_dtype(xs.dtype())
}

/// `weight` in the dtype of the activations it multiplies. Weights are kept (and trained)
/// in f32; under mixed precision each use takes a bfloat16 copy, whose gradient flows back
/// to the f32 weight through the cast. A no-op when the dtypes already agree.
pub fn as_compute(weight: &Tensor, like: &Tensor) -> Result<Tensor> {
    weight.to_dtype(like.dtype())
}

/// Which kernels the layers use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Fused softmax / layer norm: fast, but gradients do not flow through them.
    #[default]
    Inference,
    /// Ops with a backward pass, for layers that are fine-tuned.
    Trainable,
}

/// Softmax over the last dimension.
pub fn softmax_last(xs: &Tensor, mode: Mode) -> Result<Tensor> {
    match mode {
        Mode::Inference => candle_nn::ops::softmax_last_dim(xs),
        Mode::Trainable => super::fused_rows::softmax_last(xs),
    }
}

/// A dense layer that folds leading dimensions into one matrix product.
///
/// candle_nn's `Linear` multiplies a `(batch, seq, in)` input by a broadcast weight as a
/// batched matmul; a single `(batch*seq, in) x (in, out)` product is faster on CPU.
#[derive(Debug, Clone)]
pub struct Linear {
    weight: Tensor,
    bias: Option<Tensor>,
}

impl Linear {
    pub fn load(in_dim: usize, out_dim: usize, vb: VarBuilder) -> Result<Self> {
        let linear = candle_nn::linear(in_dim, out_dim, vb)?;
        Ok(Self { weight: linear.weight().clone(), bias: linear.bias().cloned() })
    }

    pub fn out_dim(&self) -> usize {
        self.weight.dim(0).unwrap_or(0)
    }
}

impl Module for Linear {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let dims = xs.dims().to_vec();
        let (lead, in_dim) = dims.split_at(dims.len() - 1);
        let rows: usize = lead.iter().product();
        let flat = xs.reshape((rows, in_dim[0]))?;
        let mut out = flat.matmul(&as_compute(&self.weight, xs)?.t()?)?;
        if let Some(bias) = &self.bias {
            // The product is fresh: frozen layers add the bias into it without a copy.
            out = add_bias_in_place(out, &as_compute(bias, xs)?)?;
        }
        let mut shape = lead.to_vec();
        shape.push(self.out_dim());
        out.reshape(shape)
    }
}

/// Layer normalisation over the last dimension.
#[derive(Debug, Clone)]
pub struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

impl LayerNorm {
    /// Loads `weight`/`bias`, or the `gamma`/`beta` names of TF-converted BERT checkpoints.
    pub fn load(size: usize, eps: f64, vb: VarBuilder) -> Result<Self> {
        let (weight_name, bias_name) =
            if vb.contains_tensor("gamma") && !vb.contains_tensor("weight") {
                ("gamma", "beta")
            } else {
                ("weight", "bias")
            };
        let weight = vb.get_with_hints(size, weight_name, Init::Const(1.0))?;
        let bias = vb.get_with_hints(size, bias_name, Init::Const(0.0))?;
        Ok(Self { weight, bias, eps })
    }

    /// Normalises in f32 whatever the input's dtype (see [`in_f32`]).
    pub fn forward(&self, xs: &Tensor, mode: Mode) -> Result<Tensor> {
        let eps = self.eps as f32;
        in_f32(xs, |xs| match mode {
            Mode::Inference => {
                candle_nn::ops::layer_norm(&xs.contiguous()?, &self.weight, &self.bias, eps)
            }
            // ε as candle's `layer_norm_slow` took it (an f32), which these layers used first.
            Mode::Trainable => layer_norm_trainable(xs, &self.weight, &self.bias, f64::from(eps)),
        })
    }
}

/// Layer normalisation over the last dimension with a backward pass:
/// `(x - mean) / sqrt(var + eps) * gamma + beta`, the statistics in `x`'s dtype.
pub fn layer_norm_trainable(x: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f64) -> Result<Tensor> {
    scale_shift(&normalize_last(x, eps)?, gamma, beta)
}

/// The activation functions named by Hugging Face configs' `hidden_act`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// The exact, erf-based GELU.
    Gelu,
    /// The tanh approximation of GELU.
    #[serde(alias = "gelu_pytorch_tanh", alias = "gelu_fast")]
    GeluNew,
    /// `x * sigmoid(1.702 x)`, used by OpenAI's CLIP.
    QuickGelu,
    Relu,
}

impl Activation {
    pub fn forward(&self, xs: &Tensor, mode: Mode) -> Result<Tensor> {
        match self {
            Activation::Gelu if mode == Mode::Inference => super::fast_gelu::gelu_erf_inference(xs),
            Activation::Gelu => super::fast_gelu::gelu_erf(xs),
            Activation::GeluNew => xs.gelu(),
            Activation::QuickGelu => xs * candle_nn::ops::sigmoid(&(xs * 1.702)?)?,
            Activation::Relu => xs.relu(),
        }
    }
}

/// The additive attention bias for a `(batch, seq)` 0/1 mask: 0 where a key may be attended,
/// a large negative number where it is padding; shaped `(batch, 1, 1, seq)` to broadcast
/// over heads and queries.
pub fn attention_bias(mask: &Tensor) -> Result<Tensor> {
    let (batch, seq) = mask.dims2()?;
    // Not -inf: a row of -inf would turn softmax into NaN; this still underflows exp to 0.
    let keep = mask.to_dtype(DType::F32)?;
    ((keep - 1.0)? * 1e9)?.reshape((batch, 1, 1, seq))
}

/// Splits `(batch, seq, heads*head_dim)` into `(batch, heads, seq, head_dim)`.
pub fn split_heads(xs: &Tensor, heads: usize) -> Result<Tensor> {
    let (batch, seq, width) = xs.dims3()?;
    xs.reshape((batch, seq, heads, width / heads))?.transpose(1, 2)?.contiguous()
}

/// The inverse of [`split_heads`].
pub fn merge_heads(xs: &Tensor) -> Result<Tensor> {
    let (batch, heads, seq, head_dim) = xs.dims4()?;
    xs.transpose(1, 2)?.contiguous()?.reshape((batch, seq, heads * head_dim))
}

/// Scaled dot-product attention of already split heads, with an additive key bias (f32,
/// like the scores' softmax: see [`in_f32`]).
pub fn attention(
    query: &Tensor,
    key: &Tensor,
    value: &Tensor,
    bias: Option<&Tensor>,
    mode: Mode,
) -> Result<Tensor> {
    let head_dim = query.dim(D::Minus1)?;
    let scores = (query.matmul(&key.t()?)? * (1.0 / (head_dim as f64).sqrt()))?;
    let weights = in_f32(&scores, |scores| {
        let scores = match bias {
            Some(bias) => scores.broadcast_add(&bias.to_dtype(DType::F32)?)?,
            None => scores.clone(),
        };
        softmax_last(&scores, mode)
    })?;
    weights.matmul(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn fused_and_backward_safe_ops_agree() -> Result<()> {
        let device = Device::Cpu;
        let xs = Tensor::randn(0f32, 1.0, (2, 3, 8), &device)?;
        let fused = softmax_last(&xs, Mode::Inference)?;
        let slow = softmax_last(&xs, Mode::Trainable)?;
        let diff = (fused - slow)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(diff < 1e-6, "softmax differs by {diff}");

        let norm = LayerNorm {
            weight: Tensor::randn(1f32, 0.1, 8, &device)?,
            bias: Tensor::randn(0f32, 0.1, 8, &device)?,
            eps: 1e-5,
        };
        let fused = norm.forward(&xs, Mode::Inference)?;
        let slow = norm.forward(&xs, Mode::Trainable)?;
        let diff = (fused - slow)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(diff < 1e-5, "layer norm differs by {diff}");
        Ok(())
    }

    #[test]
    fn linear_matches_candle_linear_on_3d_input() -> Result<()> {
        let device = Device::Cpu;
        let weight = Tensor::randn(0f32, 1.0, (5, 4), &device)?;
        let bias = Tensor::randn(0f32, 1.0, 5, &device)?;
        let xs = Tensor::randn(0f32, 1.0, (2, 3, 4), &device)?;
        let ours = Linear { weight: weight.clone(), bias: Some(bias.clone()) }.forward(&xs)?;
        let theirs = candle_nn::Linear::new(weight, Some(bias)).forward(&xs)?;
        assert_eq!(ours.dims(), &[2, 3, 5]);
        let diff = (ours - theirs)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(diff < 1e-5, "linear differs by {diff}");
        Ok(())
    }

    #[test]
    fn attention_bias_masks_padding_keys_only() -> Result<()> {
        let mask = Tensor::new(&[[1u32, 1, 0]], &Device::Cpu)?;
        let bias = attention_bias(&mask)?;
        assert_eq!(bias.dims(), &[1, 1, 1, 3]);
        let values = bias.flatten_all()?.to_vec1::<f32>()?;
        assert_eq!(&values[..2], &[0.0, 0.0]);
        assert!(values[2] < -1e8);
        Ok(())
    }
}
