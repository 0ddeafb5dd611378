//! Backward-safe building blocks: layer norm, multi-head attention, feed-forward, dropout.
//!
//! candle's fused `layer_norm`, `softmax_last_dim` and `candle_nn::LayerNorm` have no
//! backward pass and silently stop gradients, so everything here uses the encoders' ops
//! that do (`ops::layer_norm_trainable`, `ops::softmax_last` in `Mode::Trainable`: fused
//! too, with their own backward). The gradient-flow tests in `tests/model_fusion.rs` fail if
//! an op without a backward slips in.

use std::sync::{Arc, Mutex};

use candle_core::{Device, Module, Result, Tensor, D};
use candle_nn::{Init, VarBuilder};
use rand::rngs::StdRng;
use rand::Rng;

use crate::encoders::ops::{self, as_compute, in_f32, layer_norm_trainable};
use crate::encoders::row_ops::add_bias;

/// A dense layer that folds leading dimensions into one `(rows, in) x (in, out)` product.
///
/// `candle_nn::Linear` multiplies a 3-d input by the weight broadcast over the batch, so its
/// backward pass builds a `(batch, in, out)` weight gradient and then sums it over the
/// batch: for the 384 → 256 projections that was most of a training step. Flattening
/// first gives the same values with one plain matrix product each way.
#[derive(Debug, Clone)]
pub struct Linear {
    weight: Tensor,
    bias: Option<Tensor>,
}

/// A [`Linear`] with bias, initialised and named like `candle_nn::linear`.
pub fn linear(in_dim: usize, out_dim: usize, vb: VarBuilder) -> Result<Linear> {
    let inner = candle_nn::linear(in_dim, out_dim, vb)?;
    Ok(Linear { weight: inner.weight().clone(), bias: inner.bias().cloned() })
}

/// A [`Linear`] without bias, initialised and named like `candle_nn::linear_no_bias`.
pub fn linear_no_bias(in_dim: usize, out_dim: usize, vb: VarBuilder) -> Result<Linear> {
    let inner = candle_nn::linear_no_bias(in_dim, out_dim, vb)?;
    Ok(Linear { weight: inner.weight().clone(), bias: None })
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims();
        let (lead, in_dim) = dims.split_at(dims.len() - 1);
        let rows: usize = lead.iter().product();
        let mut out = x.reshape((rows, in_dim[0]))?.matmul(&as_compute(&self.weight, x)?.t()?)?;
        if let Some(bias) = &self.bias {
            out = add_bias(&out, &as_compute(bias, x)?)?;
        }
        let mut shape = lead.to_vec();
        shape.push(self.weight.dim(0)?);
        out.reshape(shape)
    }
}

/// Layer normalisation over the last dimension: `(x - mean) / sqrt(var + eps) * gamma + beta`.
#[derive(Debug, Clone)]
pub struct LayerNorm {
    gamma: Tensor,
    beta: Tensor,
    eps: f64,
}

impl LayerNorm {
    pub fn new(dim: usize, vb: VarBuilder) -> Result<Self> {
        let gamma = vb.get_with_hints(dim, "weight", Init::Const(1.0))?;
        let beta = vb.get_with_hints(dim, "bias", Init::Const(0.0))?;
        Ok(Self { gamma, beta, eps: 1e-5 })
    }
}

impl Module for LayerNorm {
    /// In f32 whatever the input's dtype (mixed precision keeps these statistics in f32).
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        in_f32(x, |x| layer_norm_trainable(x, &self.gamma, &self.beta, self.eps))
    }
}

/// Inverted dropout whose masks come from a seeded RNG shared by the whole model, because
/// candle's CPU random generator cannot be seeded and runs must be reproducible. The
/// trainer reseeds it before every step ([`Dropout::reseed`]) so that a step's masks
/// depend only on the run seed and the step, and a resumed run draws the same masks as
/// one never interrupted.
#[derive(Debug, Clone)]
pub struct Dropout {
    p: f32,
    rng: Arc<Mutex<StdRng>>,
}

impl Dropout {
    pub fn new(p: f32, rng: Arc<Mutex<StdRng>>) -> Self {
        Self { p, rng }
    }

    /// Restarts the shared RNG (of every clone of this dropout) from `seed`.
    pub fn reseed(&self, seed: u64) {
        use rand::SeedableRng;
        *self.rng.lock().expect("dropout RNG lock poisoned") = StdRng::seed_from_u64(seed);
    }

    /// Identity unless `train`; otherwise zeroes each element with probability `p` and
    /// scales the survivors by `1 / (1 - p)` so the expected activation is unchanged.
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        if !train || self.p <= 0.0 {
            return Ok(x.clone());
        }
        if self.p >= 1.0 {
            return x.zeros_like();
        }
        let keep_scale = 1.0 / (1.0 - self.p);
        let mask: Vec<f32> = {
            let mut rng = self.rng.lock().expect("dropout RNG lock poisoned");
            (0..x.elem_count())
                .map(|_| if rng.random::<f32>() < self.p { 0.0 } else { keep_scale })
                .collect()
        };
        let mask = Tensor::from_vec(mask, x.shape(), &Device::Cpu)?
            .to_device(x.device())?
            .to_dtype(x.dtype())?;
        x.mul(&mask)
    }
}

/// Multi-head scaled dot-product attention from `queries` to `context`.
#[derive(Debug, Clone)]
pub struct MultiHeadAttention {
    query: Linear,
    /// No bias: a key bias adds the same `q · b` to every score of a query, which softmax
    /// cancels, so it could never receive a gradient.
    key: Linear,
    value: Linear,
    output: Linear,
    heads: usize,
}

impl MultiHeadAttention {
    pub fn new(dim: usize, heads: usize, vb: VarBuilder) -> Result<Self> {
        if heads == 0 || !dim.is_multiple_of(heads) {
            candle_core::bail!("attention width {dim} must be divisible by the head count {heads}");
        }
        Ok(Self {
            query: linear(dim, dim, vb.pp("query"))?,
            key: linear_no_bias(dim, dim, vb.pp("key"))?,
            value: linear(dim, dim, vb.pp("value"))?,
            output: linear(dim, dim, vb.pp("output"))?,
            heads,
        })
    }

    /// `queries` `(B, Lq, F)` attend to `context` `(B, Lk, F)`. `key_mask` `(B, Lk)` holds 1
    /// for keys that may be attended to and 0 for keys that must be ignored.
    /// Returns `(B, Lq, F)`. Heads, the padding bias and the merge are the encoder layers'
    /// ([`ops`]); the scores multiply a contiguous copy of the keys' transpose, and the
    /// mask and the softmax run in f32.
    pub fn forward(
        &self,
        queries: &Tensor,
        context: &Tensor,
        key_mask: Option<&Tensor>,
    ) -> Result<Tensor> {
        let q = ops::split_heads(&self.query.forward(queries)?, self.heads)?;
        let k = ops::split_heads(&self.key.forward(context)?, self.heads)?;
        let v = ops::split_heads(&self.value.forward(context)?, self.heads)?;
        let scale = 1.0 / (q.dim(D::Minus1)? as f64).sqrt();
        let scores = (q.matmul(&k.t()?.contiguous()?)? * scale)?;
        let bias = key_mask.map(ops::attention_bias).transpose()?;
        let weights = in_f32(&scores, |scores| {
            let scores = match &bias {
                Some(bias) => scores.broadcast_add(bias)?,
                None => scores.clone(),
            };
            ops::softmax_last(&scores, ops::Mode::Trainable)
        })?;
        self.output.forward(&ops::merge_heads(&weights.matmul(&v)?)?)
    }
}

/// Position-wise feed-forward: `Linear → GELU → dropout → Linear`.
#[derive(Debug, Clone)]
pub struct FeedForward {
    expand: Linear,
    contract: Linear,
    dropout: Dropout,
}

impl FeedForward {
    pub fn new(
        dim: usize,
        hidden: usize,
        out: usize,
        dropout: Dropout,
        vb: VarBuilder,
    ) -> Result<Self> {
        Ok(Self {
            expand: linear(dim, hidden, vb.pp("expand"))?,
            contract: linear(hidden, out, vb.pp("contract"))?,
            dropout,
        })
    }

    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        // candle's `gelu_erf` calls a scalar erf per element (and again in its backward).
        let hidden = crate::encoders::fast_gelu::gelu_erf(&self.expand.forward(x)?)?;
        self.contract.forward(&self.dropout.forward(&hidden, train)?)
    }
}

/// A post-norm transformer block (as in the original Transformer and BERT):
/// `x = LN(x + g · Attn(x, context))`, then `x = LN(x + FFN(x))`.
///
/// With `context = x` it is self-attention; with the other modality it is cross-attention.
/// The optional per-sample gate `g` `(B,)` switches the attention residual off for samples
/// whose context is missing, so they pass through the block on their own features alone.
#[derive(Debug, Clone)]
pub struct AttentionBlock {
    attention: MultiHeadAttention,
    attention_norm: LayerNorm,
    feed_forward: FeedForward,
    output_norm: LayerNorm,
    dropout: Dropout,
}

impl AttentionBlock {
    pub fn new(dim: usize, heads: usize, dropout: Dropout, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            attention: MultiHeadAttention::new(dim, heads, vb.pp("attention"))?,
            attention_norm: LayerNorm::new(dim, vb.pp("attention_norm"))?,
            feed_forward: FeedForward::new(
                dim,
                2 * dim,
                dim,
                dropout.clone(),
                vb.pp("feed_forward"),
            )?,
            output_norm: LayerNorm::new(dim, vb.pp("output_norm"))?,
            dropout,
        })
    }

    /// `x` `(B, Lq, F)`, `context` `(B, Lk, F)`, `key_mask` `(B, Lk)`, `gate` `(B,)`.
    pub fn forward(
        &self,
        x: &Tensor,
        context: &Tensor,
        key_mask: Option<&Tensor>,
        gate: Option<&Tensor>,
        train: bool,
    ) -> Result<Tensor> {
        let mut attended =
            self.dropout.forward(&self.attention.forward(x, context, key_mask)?, train)?;
        if let Some(gate) = gate {
            attended = attended.broadcast_mul(&gate.reshape((gate.elem_count(), 1, 1))?)?;
        }
        let x = self.attention_norm.forward(&(x + attended)?)?;
        let transformed = self.dropout.forward(&self.feed_forward.forward(&x, train)?, train)?;
        self.output_norm.forward(&(x + transformed)?)
    }
}

/// A fresh dropout RNG for a model seed (also used by tests of individual blocks).
pub fn dropout_rng(seed: u64) -> Arc<Mutex<StdRng>> {
    use rand::SeedableRng;
    Arc::new(Mutex::new(StdRng::seed_from_u64(seed)))
}

/// Mean over dimension 1 of `(B, L, F)`: how the exposed encoder layers are combined.
pub fn mean_over_layers(x: &Tensor) -> Result<Tensor> {
    x.mean(1)
}

/// Converts a `(B,)` 0/1 mask to the tensor's dtype and device (masks arrive as f32).
pub fn as_mask(mask: &Tensor, like: &Tensor) -> Result<Tensor> {
    mask.to_device(like.device())?.to_dtype(like.dtype())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Var};

    /// Same values and the same weight gradient as `candle_nn::Linear` on a 3-d input.
    #[test]
    fn folded_linear_matches_candle_linear_forward_and_backward() -> Result<()> {
        let device = Device::Cpu;
        let weight = Var::from_tensor(&Tensor::randn(0f32, 1.0, (5, 4), &device)?)?;
        let bias = Var::from_tensor(&Tensor::randn(0f32, 1.0, 5, &device)?)?;
        let x = Tensor::randn(0f32, 1.0, (3, 2, 4), &device)?;
        let target = Tensor::randn(0f32, 1.0, (3, 2, 5), &device)?;
        let ours =
            Linear { weight: weight.as_tensor().clone(), bias: Some(bias.as_tensor().clone()) };
        let theirs =
            candle_nn::Linear::new(weight.as_tensor().clone(), Some(bias.as_tensor().clone()));
        let (a, b) = (ours.forward(&x)?, theirs.forward(&x)?);
        assert_eq!(a.dims(), &[3, 2, 5]);
        let max_diff = |a: &Tensor, b: &Tensor| -> Result<f32> {
            (a - b)?.abs()?.max_all()?.to_dtype(DType::F32)?.to_scalar::<f32>()
        };
        assert!(max_diff(&a, &b)? < 1e-5);
        let grads_a = (a * &target)?.sum_all()?.backward()?;
        let grads_b = (b * &target)?.sum_all()?.backward()?;
        for var in [&weight, &bias] {
            let (ga, gb) = (grads_a.get(var).unwrap(), grads_b.get(var).unwrap());
            assert!(max_diff(ga, gb)? < 1e-4, "gradients differ");
            assert!(ga.abs()?.sum_all()?.to_scalar::<f32>()? > 0.0);
        }
        Ok(())
    }
}
