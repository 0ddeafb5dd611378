//! AdamW with each parameter's update done in one pass over plain f32 buffers.
//!
//! `candle_nn::AdamW` builds every update from about a dozen tensor ops, each a full pass
//! and an allocation per parameter; on the fusion model that was over a quarter of a
//! training step on cached features. This computes the same update (same formula, same
//! order of operations) in one loop per parameter. Parameters that are not f32 on the CPU
//! are updated with the tensor ops `candle_nn::AdamW` uses. Unlike candle's, its moments
//! can be saved and restored ([`FusedAdamW::moments`]), so a resumed run is exact.

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Result, Tensor, Var};
use candle_nn::{Optimizer, ParamsAdamW};

pub struct FusedAdamW {
    moments: Vec<Moments>,
    step_t: usize,
    params: ParamsAdamW,
}

/// One parameter and its running first and second moments.
struct Moments {
    var: Var,
    buffers: Buffers,
}

enum Buffers {
    /// f32 on the CPU: updated in one fused loop.
    Host { first: Vec<f32>, second: Vec<f32> },
    /// Anything else, updated with the tensor ops of `candle_nn::AdamW` (same formula).
    Tensors { first: Tensor, second: Tensor },
}

impl Optimizer for FusedAdamW {
    type Config = ParamsAdamW;

    fn new(vars: Vec<Var>, params: ParamsAdamW) -> Result<Self> {
        let moments = vars
            .into_iter()
            .filter(|var| var.dtype().is_float())
            .map(|var| {
                let buffers = if var.dtype() == DType::F32 && matches!(var.device(), Device::Cpu) {
                    let n = var.elem_count();
                    Buffers::Host { first: vec![0.0; n], second: vec![0.0; n] }
                } else {
                    let zeros = var.zeros_like()?;
                    Buffers::Tensors { first: zeros.clone(), second: zeros }
                };
                Ok(Moments { var, buffers })
            })
            .collect::<Result<_>>()?;
        Ok(Self { moments, step_t: 0, params })
    }

    fn learning_rate(&self) -> f64 {
        self.params.lr
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.params.lr = lr;
    }

    fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.step_t += 1;
        let p = &self.params;
        let scale_m = 1.0 / (1.0 - p.beta1.powi(self.step_t as i32));
        let scale_v = 1.0 / (1.0 - p.beta2.powi(self.step_t as i32));
        for moments in &mut self.moments {
            let Some(grad) = grads.get(&moments.var) else { continue };
            let var = &moments.var;
            match &mut moments.buffers {
                Buffers::Host { first, second } => {
                    host_step(var, grad, first, second, p, scale_m, scale_v)?
                }
                Buffers::Tensors { first, second } => {
                    let m = ((&*first * p.beta1)? + (grad * (1.0 - p.beta1))?)?;
                    let v = ((&*second * p.beta2)? + (grad.sqr()? * (1.0 - p.beta2))?)?;
                    let next = (var.as_tensor() * (1.0 - p.lr * p.weight_decay))?;
                    let adjusted = ((&m * scale_m)? / ((&v * scale_v)?.sqrt()? + p.eps)?)?;
                    var.set(&(next - (adjusted * p.lr)?)?)?;
                    (*first, *second) = (m, v);
                }
            }
        }
        Ok(())
    }
}

/// The fused update of one f32 CPU parameter.
fn host_step(
    var: &Var,
    grad: &Tensor,
    first: &mut [f32],
    second: &mut [f32],
    p: &ParamsAdamW,
    scale_m: f64,
    scale_v: f64,
) -> Result<()> {
    let (beta1, beta2) = (p.beta1 as f32, p.beta2 as f32);
    let decay = (1.0 - p.lr * p.weight_decay) as f32;
    let (scale_m, scale_v) = (scale_m as f32, scale_v as f32);
    let (lr, eps) = (p.lr as f32, p.eps as f32);
    let grad = grad.flatten_all()?.to_vec1::<f32>()?;
    let mut theta = var.as_tensor().flatten_all()?.to_vec1::<f32>()?;
    // Zipped iterators rather than indexing: no bounds checks, so the loop vectorises.
    let values = theta.iter_mut().zip(&grad).zip(first).zip(second);
    for (((theta, &g), first), second) in values {
        let m = *first * beta1 + g * (1.0 - beta1);
        let v = *second * beta2 + g * g * (1.0 - beta2);
        *first = m;
        *second = v;
        let step = (m * scale_m) / ((v * scale_v).sqrt() + eps);
        *theta = *theta * decay - step * lr;
    }
    var.set(&Tensor::from_vec(theta, var.shape().clone(), &Device::Cpu)?)
}

impl FusedAdamW {
    /// How many steps were taken, and each parameter's first and second moments, in the
    /// order the parameters were given: what a checkpoint keeps to resume exactly.
    pub fn moments(&self) -> Result<(usize, Vec<(Tensor, Tensor)>)> {
        let moments = self
            .moments
            .iter()
            .map(|m| match &m.buffers {
                Buffers::Host { first, second } => {
                    let shape = m.var.shape();
                    Ok((
                        Tensor::from_slice(first, shape, &Device::Cpu)?,
                        Tensor::from_slice(second, shape, &Device::Cpu)?,
                    ))
                }
                Buffers::Tensors { first, second } => Ok((first.clone(), second.clone())),
            })
            .collect::<Result<_>>()?;
        Ok((self.step_t, moments))
    }

    /// Continues from a state [`FusedAdamW::moments`] returned (same parameters, same
    /// order).
    pub fn restore(&mut self, step: usize, moments: Vec<(Tensor, Tensor)>) -> Result<()> {
        if moments.len() != self.moments.len() {
            candle_core::bail!(
                "{} moments saved for {} parameters",
                moments.len(),
                self.moments.len()
            );
        }
        for (m, (first, second)) in self.moments.iter_mut().zip(moments) {
            if first.shape() != m.var.shape() || second.shape() != m.var.shape() {
                candle_core::bail!(
                    "saved moments of shape {:?} for a parameter of shape {:?}",
                    first.shape(),
                    m.var.shape()
                );
            }
            m.buffers = match &m.buffers {
                Buffers::Host { .. } => Buffers::Host {
                    first: first.flatten_all()?.to_dtype(DType::F32)?.to_vec1()?,
                    second: second.flatten_all()?.to_dtype(DType::F32)?.to_vec1()?,
                },
                Buffers::Tensors { .. } => {
                    let like = |t: Tensor| t.to_dtype(m.var.dtype())?.to_device(m.var.device());
                    Buffers::Tensors { first: like(first)?, second: like(second)? }
                }
            };
        }
        self.step_t = step;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_nn::AdamW;

    /// Five steps of both optimisers on the same quadratic, from the same start, with weight
    /// decay and a learning-rate change in the middle, must end at the same parameters (up to
    /// f32 rounding: candle applies the constants through f64 affine ops). f32 takes the
    /// fused loop, f64 the tensor path.
    #[test]
    fn matches_candle_adamw_step_for_step() -> Result<()> {
        for dtype in [DType::F32, DType::F64] {
            let device = Device::Cpu;
            let start = Tensor::randn(0f32, 1.0, (4, 3), &device)?.to_dtype(dtype)?;
            let target = Tensor::randn(0f32, 1.0, (4, 3), &device)?.to_dtype(dtype)?;
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
            let max_abs = |t: Tensor| t.abs()?.max_all()?.to_dtype(DType::F32)?.to_scalar::<f32>();
            let moved = max_abs((ours_var.as_tensor() - &start)?)?;
            assert!(moved > 0.1, "the parameters barely moved ({moved}, {dtype:?})");
            let diff = max_abs((ours_var.as_tensor() - theirs_var.as_tensor())?)?;
            assert!(diff < 1e-5, "fused AdamW drifted from candle's by {diff} ({dtype:?})");
        }
        Ok(())
    }

    /// Three steps, the moments saved into a fresh optimizer, two more steps: the same
    /// parameters, to the bit, as five steps of one optimizer.
    #[test]
    fn restored_moments_continue_exactly() -> Result<()> {
        for dtype in [DType::F32, DType::F64] {
            let device = Device::Cpu;
            let start = Tensor::randn(0f32, 1.0, (5, 2), &device)?.to_dtype(dtype)?;
            let target = Tensor::randn(0f32, 1.0, (5, 2), &device)?.to_dtype(dtype)?;
            let params = ParamsAdamW { lr: 0.05, weight_decay: 0.1, ..Default::default() };
            let step = |var: &Var, optimizer: &mut FusedAdamW| -> Result<()> {
                let loss = (var.as_tensor() - &target)?.sqr()?.sum_all()?;
                optimizer.step(&loss.backward()?)
            };
            let whole = Var::from_tensor(&start)?;
            let mut one = FusedAdamW::new(vec![whole.clone()], params.clone())?;
            for _ in 0..5 {
                step(&whole, &mut one)?;
            }
            let split = Var::from_tensor(&start)?;
            let mut before = FusedAdamW::new(vec![split.clone()], params.clone())?;
            for _ in 0..3 {
                step(&split, &mut before)?;
            }
            let (steps, moments) = before.moments()?;
            assert_eq!(steps, 3);
            let mut after = FusedAdamW::new(vec![split.clone()], params.clone())?;
            after.restore(steps, moments)?;
            for _ in 0..2 {
                step(&split, &mut after)?;
            }
            let bits =
                |v: &Var| v.as_tensor().flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>();
            assert_eq!(bits(&whole)?, bits(&split)?, "{dtype:?}");
            // Without the moments the continuation differs: the test can tell.
            let fresh = Var::from_tensor(&start)?;
            let mut forgetful = FusedAdamW::new(vec![fresh.clone()], params.clone())?;
            for _ in 0..3 {
                step(&fresh, &mut forgetful)?;
            }
            let mut restarted = FusedAdamW::new(vec![fresh.clone()], params)?;
            for _ in 0..2 {
                step(&fresh, &mut restarted)?;
            }
            assert_ne!(bits(&whole)?, bits(&fresh)?);
        }
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
