//! Attention pooling over tokens (`text_encoder.pooling = "attention"`): each exposed
//! hidden state is summarised by a learned softmax-weighted average of its tokens instead of
//! their plain mean or the first token.
//!
//! Each state has one scoring vector `w`; a token's weight is `softmax_t(w · h_t)` over the
//! text's real tokens. `w` starts at zero, so the pool starts as exactly mean pooling — what
//! the sentence-transformers encoder was trained for — and learns which tokens to favour.
//! A bias would not be learnable (softmax ignores a shift shared by all tokens), so there
//! is none.

use candle_core::{DType, Device, Result, Tensor, D};
use candle_nn::{Init, VarBuilder, VarMap};

use crate::encoders::ops::{as_compute, in_f32, softmax_last, Mode};

/// Where the scoring vectors live in the `VarMap` (`text_pool.{state}.score`). Not under
/// the fine-tuned layers' prefix: they are new head weights, trained at the head's rate.
const TEXT_POOL: &str = "text_pool";

pub struct AttentionPool {
    /// One `(hidden)` scoring vector per pooled state, bottom to top.
    scores: Vec<Tensor>,
}

impl AttentionPool {
    /// Zero-initialised scoring vectors for `states` hidden states of width `hidden`.
    pub fn new(states: usize, hidden: usize, varmap: &VarMap, device: &Device) -> Result<Self> {
        let vb = VarBuilder::from_varmap(varmap, DType::F32, device).pp(TEXT_POOL);
        let scores = (0..states)
            .map(|i| vb.pp(i.to_string()).get_with_hints(hidden, "score", Init::Const(0.0)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { scores })
    }

    /// `(batch, hidden)`: the weighted average of `state`'s `(batch, seq, hidden)` tokens,
    /// scored by the `index`-th vector. `bias` is the encoder layers' additive padding bias
    /// ([`crate::encoders::ops::attention_bias`], `(batch, 1, 1, seq)`), so padding gets no
    /// weight.
    pub fn forward(
        &self,
        index: usize,
        state: &Tensor,
        bias: &Tensor,
        mode: Mode,
    ) -> Result<Tensor> {
        let Some(score) = self.scores.get(index) else {
            candle_core::bail!(
                "attention pool has {} scorers, asked for {index}",
                self.scores.len()
            );
        };
        let logits = state.broadcast_mul(&as_compute(score, state)?)?.sum(D::Minus1)?;
        // The padding bias and the softmax in f32, whatever the activations' dtype.
        let weights = in_f32(&logits, |logits| {
            softmax_last(&(logits + bias.flatten_from(1)?.to_dtype(DType::F32)?)?, mode)
        })?;
        weights.unsqueeze(1)?.matmul(&state.contiguous()?)?.squeeze(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoders::ops::attention_bias;

    #[test]
    fn starts_as_mean_pooling_and_ignores_padding() -> Result<()> {
        let device = Device::Cpu;
        let pool = AttentionPool::new(1, 2, &VarMap::new(), &device)?;
        let state = Tensor::new(&[[[1f32, 2.], [3., 4.], [100., 100.]]], &device)?;
        let bias = attention_bias(&Tensor::new(&[[1u32, 1, 0]], &device)?)?;
        for mode in [Mode::Trainable, Mode::Inference] {
            assert_eq!(pool.forward(0, &state, &bias, mode)?.to_vec2::<f32>()?, [[2., 3.]]);
        }
        assert!(pool.forward(1, &state, &bias, Mode::Inference).is_err());
        Ok(())
    }

    #[test]
    fn a_learned_score_favours_the_tokens_it_points_at() -> Result<()> {
        let device = Device::Cpu;
        let varmap = VarMap::new();
        let pool = AttentionPool::new(1, 2, &varmap, &device)?;
        varmap.data().lock().unwrap()[&format!("{TEXT_POOL}.0.score")]
            .set(&Tensor::new(&[10f32, 0.], &device)?)?;
        let state = Tensor::new(&[[[1f32, 0.], [0., 1.]]], &device)?;
        let bias = attention_bias(&Tensor::new(&[[1u32, 1]], &device)?)?;
        let pooled = pool.forward(0, &state, &bias, Mode::Inference)?.to_vec2::<f32>()?;
        assert!(pooled[0][0] > 0.99 && pooled[0][1] < 0.01, "{pooled:?}");
        Ok(())
    }
}
