//! A dense (soft) mixture of experts over the fused vector:
//! `y = Σ_i g_i(x) · E_i(x)` with `g = softmax(W_g x)` and each `E_i` a small MLP.
//!
//! Every expert sees every sample, weighted by its gate (no top-k routing: batches are small
//! and the experts are cheap). The per-sample gates are exposed so the dashboard can show
//! which expert each class routes to.

use candle_core::{Module, Result, Tensor, D};
use candle_nn::{linear, Linear, VarBuilder};

use super::layers::{Dropout, FeedForward};

#[derive(Debug, Clone)]
pub struct MixtureOfExperts {
    experts: Vec<FeedForward>,
    /// Absent with a single expert, whose gate would be the constant 1.
    gate: Option<Linear>,
}

impl MixtureOfExperts {
    pub fn new(dim: usize, experts: usize, dropout: Dropout, vb: VarBuilder) -> Result<Self> {
        if experts == 0 {
            candle_core::bail!("the mixture of experts needs at least one expert");
        }
        let gate = if experts > 1 { Some(linear(dim, experts, vb.pp("gate"))?) } else { None };
        let experts = (0..experts)
            .map(|e| FeedForward::new(dim, 2 * dim, dim, dropout.clone(), vb.pp(format!("expert{e}"))))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { experts, gate })
    }

    /// `x` `(B, F)` → (`(B, F)` output, `(B, experts)` gate weights).
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<(Tensor, Tensor)> {
        let gates = match &self.gate {
            Some(gate) => candle_nn::ops::softmax(&gate.forward(x)?, D::Minus1)?,
            None => Tensor::ones((x.dim(0)?, 1), x.dtype(), x.device())?,
        };
        // (B, experts, F): every expert's opinion of every sample.
        let opinions = self
            .experts
            .iter()
            .map(|expert| expert.forward(x, train)?.unsqueeze(1))
            .collect::<Result<Vec<_>>>()?;
        let opinions = Tensor::cat(&opinions, 1)?;
        let mixed = opinions.broadcast_mul(&gates.unsqueeze(2)?)?.sum(1)?;
        Ok((mixed, gates))
    }
}

/// Load-balancing penalty for soft gating: the squared coefficient of variation of each
/// expert's importance (its total gate weight over the batch), as in Shazeer et al. (2017).
///
/// It is 0 when the batch spreads evenly over the experts and grows as routing collapses
/// onto a few of them. We use importance rather than Switch's `N·Σ f_i·P_i` because that
/// form counts top-1 assignments, which soft gating does not make, and its `f_i` has no
/// gradient. `gates` is `(B, experts)`.
pub fn load_balance_loss(gates: &Tensor) -> Result<Tensor> {
    let importance = gates.sum(0)?;
    let mean = importance.mean_all()?;
    let variance = importance.broadcast_sub(&mean)?.sqr()?.mean_all()?;
    variance.div(&(mean.sqr()? + 1e-10)?)
}
