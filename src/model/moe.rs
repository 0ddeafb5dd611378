//! A dense (soft) mixture of experts over the fused vector:
//! `y = Σ_i g_i(x) · E_i(x)` with `g = softmax(W_g x)` and each `E_i` a small MLP.
//!
//! Every expert sees every sample, weighted by its gate (no top-k routing: batches are small
//! and the experts are cheap). The per-sample gates are exposed so the dashboard can show
//! which expert each class routes to.

use candle_core::{DType, Module, Result, Tensor, D};
use candle_nn::VarBuilder;

use super::layers::{linear, Dropout, FeedForward, Linear};

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
            .map(|e| {
                FeedForward::new(dim, 2 * dim, dim, dropout.clone(), vb.pp(format!("expert{e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { experts, gate })
    }

    /// `x` `(B, F)` → (`(B, F)` output, `(B, experts)` gate weights).
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<(Tensor, Tensor)> {
        // The gate's softmax, and the gate weights it returns, are f32 whatever the
        // activations' dtype (they also feed the load-balancing loss).
        let gates = match &self.gate {
            Some(gate) => {
                candle_nn::ops::softmax(&gate.forward(x)?.to_dtype(DType::F32)?, D::Minus1)?
            }
            None => Tensor::ones((x.dim(0)?, 1), DType::F32, x.device())?,
        };
        // (B, experts, F): every expert's opinion of every sample.
        let opinions = self
            .experts
            .iter()
            .map(|expert| expert.forward(x, train)?.unsqueeze(1))
            .collect::<Result<Vec<_>>>()?;
        let opinions = Tensor::cat(&opinions, 1)?;
        let mixed = opinions.broadcast_mul(&gates.to_dtype(x.dtype())?.unsqueeze(2)?)?.sum(1)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn load_balance_is_zero_when_even_and_n_minus_one_when_collapsed() {
        let even = Tensor::full(0.25f32, (8, 4), &Device::Cpu).unwrap();
        let value = load_balance_loss(&even).unwrap().to_scalar::<f32>().unwrap();
        assert!(value.abs() < 1e-6, "balanced gates cost {value}");

        // Every sample routed to expert 0: importance (8, 0, 0, 0), CV² = N - 1 = 3.
        let mut collapsed = vec![0f32; 32];
        collapsed.iter_mut().step_by(4).for_each(|g| *g = 1.0);
        let collapsed = Tensor::from_vec(collapsed, (8, 4), &Device::Cpu).unwrap();
        let value = load_balance_loss(&collapsed).unwrap().to_scalar::<f32>().unwrap();
        assert!((value - 3.0).abs() < 1e-5, "collapsed gates cost {value}");
    }

    #[test]
    fn output_is_the_gate_weighted_sum_of_experts() {
        use super::super::layers::dropout_rng;
        let varmap = candle_nn::VarMap::new();
        let vb = candle_nn::VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let dropout = Dropout::new(0.0, dropout_rng(0));
        let moe = MixtureOfExperts::new(6, 3, dropout, vb).unwrap();
        let x = Tensor::randn(0f32, 1.0, (5, 6), &Device::Cpu).unwrap();
        let (mixed, gates) = moe.forward(&x, false).unwrap();
        let mut expected = Tensor::zeros((5, 6), DType::F32, &Device::Cpu).unwrap();
        for (e, expert) in moe.experts.iter().enumerate() {
            let weight = gates.narrow(1, e, 1).unwrap();
            let term = expert.forward(&x, false).unwrap().broadcast_mul(&weight).unwrap();
            expected = (expected + term).unwrap();
        }
        let diff = (mixed - expected).unwrap().abs().unwrap().max_all().unwrap();
        assert!(diff.to_scalar::<f32>().unwrap() < 1e-5);
    }
}
