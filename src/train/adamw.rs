//! AdamW with each parameter's update done in one pass over plain f32 buffers.
//!
//! `candle_nn::AdamW` builds every update from about a dozen tensor ops, each a full pass
//! and an allocation per parameter; on the fusion model that was over a quarter of a
//! training step on cached features. This computes the same update (same formula, same
//! order of operations) in one loop per parameter. Parameters that are not f32 on the CPU
//! are left to `candle_nn::AdamW`, so other devices behave as before.

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Result, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};

pub struct FusedAdamW {
    fused: Vec<Moments>,
    /// Everything not f32 on the CPU, updated by candle's own AdamW.
    fallback: Option<AdamW>,
    step_t: usize,
    params: ParamsAdamW,
}

/// One parameter and its running first and second moments.
struct Moments {
    var: Var,
    first: Vec<f32>,
    second: Vec<f32>,
}

impl Optimizer for FusedAdamW {
    type Config = ParamsAdamW;

    fn new(vars: Vec<Var>, params: ParamsAdamW) -> Result<Self> {
        let (fused, other): (Vec<Var>, Vec<Var>) = vars
            .into_iter()
            .filter(|var| var.dtype().is_float())
            .partition(|var| var.dtype() == DType::F32 && matches!(var.device(), Device::Cpu));
        let fused = fused
            .into_iter()
            .map(|var| {
                let n = var.elem_count();
                Moments { var, first: vec![0.0; n], second: vec![0.0; n] }
            })
            .collect();
        let fallback =
            if other.is_empty() { None } else { Some(AdamW::new(other, params.clone())?) };
        Ok(Self { fused, fallback, step_t: 0, params })
    }

    fn learning_rate(&self) -> f64 {
        self.params.lr
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.params.lr = lr;
        if let Some(fallback) = &mut self.fallback {
            fallback.set_learning_rate(lr);
        }
    }

    fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.step_t += 1;
        let p = &self.params;
        let (beta1, beta2) = (p.beta1 as f32, p.beta2 as f32);
        let decay = (1.0 - p.lr * p.weight_decay) as f32;
        let scale_m = (1.0 / (1.0 - p.beta1.powi(self.step_t as i32))) as f32;
        let scale_v = (1.0 / (1.0 - p.beta2.powi(self.step_t as i32))) as f32;
        let (lr, eps) = (p.lr as f32, p.eps as f32);
        for moments in &mut self.fused {
            let Some(grad) = grads.get(&moments.var) else { continue };
            let grad = grad.flatten_all()?.to_vec1::<f32>()?;
            let mut theta = moments.var.as_tensor().flatten_all()?.to_vec1::<f32>()?;
            // Zipped iterators rather than indexing: no bounds checks, so the loop vectorises.
            let values =
                theta.iter_mut().zip(&grad).zip(&mut moments.first).zip(&mut moments.second);
            for (((theta, &g), first), second) in values {
                let m = *first * beta1 + g * (1.0 - beta1);
                let v = *second * beta2 + g * g * (1.0 - beta2);
                *first = m;
                *second = v;
                let step = (m * scale_m) / ((v * scale_v).sqrt() + eps);
                *theta = *theta * decay - step * lr;
            }
            let shape = moments.var.shape().clone();
            moments.var.set(&Tensor::from_vec(theta, shape, &Device::Cpu)?)?;
        }
        if let Some(fallback) = &mut self.fallback {
            fallback.step(grads)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Five steps of both optimisers on the same quadratic, from the same start, with weight
    /// decay and a learning-rate change in the middle, must end at the same parameters (up to
    /// f32 rounding: candle applies the constants through f64 affine ops).
    #[test]
    fn matches_candle_adamw_step_for_step() -> Result<()> {
        let device = Device::Cpu;
        let start = Tensor::randn(0f32, 1.0, (4, 3), &device)?;
        let target = Tensor::randn(0f32, 1.0, (4, 3), &device)?;
        let params = ParamsAdamW { lr: 0.05, weight_decay: 0.1, ..Default::default() };
        let ours_var = Var::from_tensor(&start)?;
        let theirs_var = Var::from_tensor(&start)?;
        let mut ours = FusedAdamW::new(vec![ours_var.clone()], params.clone())?;
        let mut theirs = AdamW::new(vec![theirs_var.clone()], params)?;
        for step in 0..5 {
            if step == 3 {
                ours.set_learning_rate(0.01);
                theirs.set_learning_rate(0.01);
            }
            for (var, optimizer) in
                [(&ours_var, &mut ours as &mut dyn StepWith), (&theirs_var, &mut theirs)]
            {
                let loss = (var.as_tensor() - &target)?.sqr()?.sum_all()?;
                optimizer.step_with(&loss.backward()?)?;
            }
        }
        let moved = (ours_var.as_tensor() - &start)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(moved > 0.1, "the parameters barely moved ({moved})");
        let diff = (ours_var.as_tensor() - theirs_var.as_tensor())?
            .abs()?
            .max_all()?
            .to_scalar::<f32>()?;
        assert!(diff < 1e-5, "fused AdamW drifted from candle's by {diff}");
        Ok(())
    }

    /// `Optimizer` is not object safe; this lets the test drive both through one loop.
    trait StepWith {
        fn step_with(&mut self, grads: &GradStore) -> Result<()>;
    }
    impl<O: Optimizer> StepWith for O {
        fn step_with(&mut self, grads: &GradStore) -> Result<()> {
            self.step(grads)
        }
    }
}
