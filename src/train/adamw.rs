//! AdamW with few passes per step, wherever the parameters live.
//!
//! `candle_nn::AdamW` builds every update from about a dozen tensor ops per parameter: on
//! the CPU each is a full pass and an allocation (over a quarter of a training step on
//! cached features), on a GPU each is a kernel launch, and a fine-tuned model's ~500
//! parameters made the optimizer thousands of launches a step. So:
//!
//! - f32 parameters on the CPU are updated in one loop each over plain buffers;
//! - all other parameters of one device and dtype (a GPU's) are updated together: their
//!   gradients and values are laid end to end and the same dozen ops run once over all of
//!   them, with the moments kept end to end as well. Element for element this is the same
//!   arithmetic as `candle_nn::AdamW` (tested to the bit).
//!
//! Unlike candle's, the moments can be saved and restored ([`FusedAdamW::moments`]), so a
//! resumed run is exact.

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, DeviceLocation, Result, Tensor, Var};
use candle_nn::{Optimizer, ParamsAdamW};
use rayon::prelude::*;

pub struct FusedAdamW {
    /// Where each parameter's moments live, in the order the parameters were given.
    slots: Vec<Slot>,
    host: Vec<HostMoments>,
    groups: Vec<FlatGroup>,
    step_t: usize,
    params: ParamsAdamW,
}

#[derive(Clone, Copy)]
enum Slot {
    Host(usize),
    Flat { group: usize, member: usize },
}

/// An f32 CPU parameter and its running first and second moments.
struct HostMoments {
    var: Var,
    first: Vec<f32>,
    second: Vec<f32>,
}

/// Parameters of one device and dtype, updated as one vector; `first` and `second` hold
/// their moments end to end, each parameter's at its offset.
struct FlatGroup {
    vars: Vec<Var>,
    offsets: Vec<usize>,
    first: Tensor,
    second: Tensor,
}

impl Optimizer for FusedAdamW {
    type Config = ParamsAdamW;

    fn new(vars: Vec<Var>, params: ParamsAdamW) -> Result<Self> {
        let mut optimizer =
            Self { slots: Vec::new(), host: Vec::new(), groups: Vec::new(), step_t: 0, params };
        let mut grouped: Vec<((DeviceLocation, DType), Vec<Var>)> = Vec::new();
        for var in vars.into_iter().filter(|var| var.dtype().is_float()) {
            if var.dtype() == DType::F32 && matches!(var.device(), Device::Cpu) {
                optimizer.slots.push(Slot::Host(optimizer.host.len()));
                let n = var.elem_count();
                optimizer.host.push(HostMoments { var, first: vec![0.0; n], second: vec![0.0; n] });
                continue;
            }
            let key = (var.device().location(), var.dtype());
            let group = match grouped.iter().position(|(k, _)| *k == key) {
                Some(group) => group,
                None => {
                    grouped.push((key, Vec::new()));
                    grouped.len() - 1
                }
            };
            optimizer.slots.push(Slot::Flat { group, member: grouped[group].1.len() });
            grouped[group].1.push(var);
        }
        for (_, vars) in grouped {
            optimizer.groups.push(FlatGroup::new(vars)?);
        }
        Ok(optimizer)
    }

    fn learning_rate(&self) -> f64 {
        self.params.lr
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.params.lr = lr;
    }

    fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.step_t += 1;
        let step = Step::new(&self.params, self.step_t);
        // Each parameter's update is independent of the others': spread them over the cores.
        self.host.par_iter_mut().try_for_each(|moments| match grads.get(&moments.var) {
            Some(grad) => moments.step(grad, &step),
            None => Ok(()),
        })?;
        for group in &mut self.groups {
            group.step(grads, &step)?;
        }
        Ok(())
    }
}

/// Step `t`'s settings: the hyper-parameters and the moments' bias corrections.
struct Step<'a> {
    p: &'a ParamsAdamW,
    scale_m: f64,
    scale_v: f64,
}

impl<'a> Step<'a> {
    fn new(p: &'a ParamsAdamW, t: usize) -> Self {
        let scale_m = 1.0 / (1.0 - p.beta1.powi(t as i32));
        let scale_v = 1.0 / (1.0 - p.beta2.powi(t as i32));
        Self { p, scale_m, scale_v }
    }
}

impl HostMoments {
    /// The fused update of one f32 CPU parameter.
    fn step(&mut self, grad: &Tensor, step: &Step) -> Result<()> {
        let p = step.p;
        let (beta1, beta2) = (p.beta1 as f32, p.beta2 as f32);
        let decay = (1.0 - p.lr * p.weight_decay) as f32;
        let (scale_m, scale_v) = (step.scale_m as f32, step.scale_v as f32);
        let (lr, eps) = (p.lr as f32, p.eps as f32);
        let grad = grad.flatten_all()?.to_vec1::<f32>()?;
        let mut theta = self.var.as_tensor().flatten_all()?.to_vec1::<f32>()?;
        // Zipped iterators rather than indexing: no bounds checks, so the loop vectorises.
        let values = theta.iter_mut().zip(&grad).zip(&mut self.first).zip(&mut self.second);
        for (((theta, &g), first), second) in values {
            let m = *first * beta1 + g * (1.0 - beta1);
            let v = *second * beta2 + g * g * (1.0 - beta2);
            *first = m;
            *second = v;
            let step = (m * scale_m) / ((v * scale_v).sqrt() + eps);
            *theta = *theta * decay - step * lr;
        }
        self.var.set(&Tensor::from_vec(theta, self.var.shape().clone(), &Device::Cpu)?)
    }
}

impl FlatGroup {
    fn new(vars: Vec<Var>) -> Result<Self> {
        let mut offsets = Vec::with_capacity(vars.len());
        let mut total = 0;
        for var in &vars {
            offsets.push(total);
            total += var.elem_count();
        }
        let like = &vars[0];
        let first = Tensor::zeros(total, like.dtype(), like.device())?;
        Ok(Self { vars, offsets, second: first.clone(), first })
    }

    /// Member `i`'s part of the end-to-end vector `t`, shaped like its parameter.
    fn part(&self, t: &Tensor, i: usize) -> Result<Tensor> {
        let var = &self.vars[i];
        t.narrow(0, self.offsets[i], var.elem_count())?.reshape(var.shape())
    }

    /// `(first, second)` of member `i`, shaped like its parameter.
    fn member(&self, i: usize) -> Result<(Tensor, Tensor)> {
        Ok((self.part(&self.first, i)?, self.part(&self.second, i)?))
    }

    fn step(&mut self, grads: &GradStore, step: &Step) -> Result<()> {
        let all: Option<Vec<&Tensor>> = self.vars.iter().map(|var| grads.get(var)).collect();
        let Some(all) = all else {
            return self.step_each(grads, step);
        };
        let end_to_end = |tensors: Vec<&Tensor>| -> Result<Tensor> {
            Tensor::cat(
                &tensors.into_iter().map(Tensor::flatten_all).collect::<Result<Vec<_>>>()?,
                0,
            )
        };
        let grad = end_to_end(all)?;
        let theta = end_to_end(self.vars.iter().map(|var| var.as_tensor()).collect())?;
        let (first, second, next) = update(&theta, &grad, &self.first, &self.second, step)?;
        for (i, var) in self.vars.iter().enumerate() {
            var.set(&self.part(&next, i)?)?;
        }
        (self.first, self.second) = (first, second);
        Ok(())
    }

    /// A step where some parameter has no gradient (it took no part in the loss): each
    /// parameter on its own, the ones without a gradient left as they are, as candle does.
    fn step_each(&mut self, grads: &GradStore, step: &Step) -> Result<()> {
        let (mut firsts, mut seconds) = (Vec::new(), Vec::new());
        for (i, var) in self.vars.iter().enumerate() {
            let (first, second) = self.member(i)?;
            let (first, second) = match grads.get(var) {
                Some(grad) => {
                    let theta = var.as_tensor();
                    let (first, second, next) = update(theta, grad, &first, &second, step)?;
                    var.set(&next)?;
                    (first, second)
                }
                None => (first, second),
            };
            firsts.push(first.flatten_all()?);
            seconds.push(second.flatten_all()?);
        }
        (self.first, self.second) = (Tensor::cat(&firsts, 0)?, Tensor::cat(&seconds, 0)?);
        Ok(())
    }
}

/// One AdamW update, op for op as `candle_nn::AdamW` computes it: the new first and second
/// moments and the new parameter values.
fn update(
    theta: &Tensor,
    grad: &Tensor,
    first: &Tensor,
    second: &Tensor,
    step: &Step,
) -> Result<(Tensor, Tensor, Tensor)> {
    let Step { p, scale_m, scale_v } = *step;
    let m = ((first * p.beta1)? + (grad * (1.0 - p.beta1))?)?;
    let v = ((second * p.beta2)? + (grad.sqr()? * (1.0 - p.beta2))?)?;
    let next = (theta * (1.0 - p.lr * p.weight_decay))?;
    let adjusted = ((&m * scale_m)? / ((&v * scale_v)?.sqrt()? + p.eps)?)?;
    let next = (next - (adjusted * p.lr)?)?;
    Ok((m, v, next))
}

impl FusedAdamW {
    /// How many steps were taken, and each parameter's first and second moments, in the
    /// order the parameters were given: what a checkpoint keeps to resume exactly.
    pub fn moments(&self) -> Result<(usize, Vec<(Tensor, Tensor)>)> {
        let moments = self
            .slots
            .iter()
            .map(|slot| match *slot {
                Slot::Host(i) => {
                    let m = &self.host[i];
                    let shape = m.var.shape();
                    Ok((
                        Tensor::from_slice(&m.first, shape, &Device::Cpu)?,
                        Tensor::from_slice(&m.second, shape, &Device::Cpu)?,
                    ))
                }
                Slot::Flat { group, member } => self.groups[group].member(member),
            })
            .collect::<Result<_>>()?;
        Ok((self.step_t, moments))
    }

    /// Continues from a state [`FusedAdamW::moments`] returned (same parameters, same
    /// order).
    pub fn restore(&mut self, step: usize, moments: Vec<(Tensor, Tensor)>) -> Result<()> {
        if moments.len() != self.slots.len() {
            candle_core::bail!(
                "{} moments saved for {} parameters",
                moments.len(),
                self.slots.len()
            );
        }
        let mut flat: Vec<Vec<Option<(Tensor, Tensor)>>> =
            self.groups.iter().map(|g| vec![None; g.vars.len()]).collect();
        for (slot, (first, second)) in self.slots.iter().zip(moments) {
            let var = match *slot {
                Slot::Host(i) => &self.host[i].var,
                Slot::Flat { group, member } => &self.groups[group].vars[member],
            };
            if first.shape() != var.shape() || second.shape() != var.shape() {
                candle_core::bail!(
                    "saved moments of shape {:?} for a parameter of shape {:?}",
                    first.shape(),
                    var.shape()
                );
            }
            match *slot {
                Slot::Host(i) => {
                    let host = &mut self.host[i];
                    host.first = first.flatten_all()?.to_dtype(DType::F32)?.to_vec1()?;
                    host.second = second.flatten_all()?.to_dtype(DType::F32)?.to_vec1()?;
                }
                Slot::Flat { group, member } => {
                    let like =
                        |t: Tensor| t.flatten_all()?.to_dtype(var.dtype())?.to_device(var.device());
                    flat[group][member] = Some((like(first)?, like(second)?));
                }
            }
        }
        for (group, members) in self.groups.iter_mut().zip(flat) {
            let (firsts, seconds): (Vec<_>, Vec<_>) = members.into_iter().flatten().unzip();
            group.first = Tensor::cat(&firsts, 0)?;
            group.second = Tensor::cat(&seconds, 0)?;
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

    /// Parameters that are not f32 on the CPU (here f64; on a GPU, all of them) are updated
    /// together as one vector: after five steps, with one parameter left out of the loss
    /// in one of them, every value equals `candle_nn::AdamW`'s to the bit.
    #[test]
    fn parameters_updated_together_match_candle_adamw_to_the_bit() -> Result<()> {
        let device = Device::Cpu;
        let shapes: [&[usize]; 3] = [&[4, 3], &[7], &[2, 2, 2]];
        let starts = shapes
            .iter()
            .map(|&shape| Tensor::randn(0f64, 1.0, shape, &device))
            .collect::<Result<Vec<_>>>()?;
        let targets = shapes
            .iter()
            .map(|&shape| Tensor::randn(0f64, 1.0, shape, &device))
            .collect::<Result<Vec<_>>>()?;
        let params = ParamsAdamW { lr: 0.05, weight_decay: 0.1, ..Default::default() };
        let vars =
            |starts: &[Tensor]| starts.iter().map(Var::from_tensor).collect::<Result<Vec<_>>>();
        let (ours_vars, theirs_vars) = (vars(&starts)?, vars(&starts)?);
        let mut ours = FusedAdamW::new(ours_vars.clone(), params.clone())?;
        assert_eq!(ours.groups.len(), 1, "one device and dtype: one group");
        let mut theirs = AdamW::new(theirs_vars.clone(), params)?;
        for step in 0..5 {
            for (vars, optimizer) in
                [(&ours_vars, &mut ours as &mut dyn StepWith), (&theirs_vars, &mut theirs)]
            {
                let mut loss = Tensor::new(0f64, &device)?;
                for (i, (var, target)) in vars.iter().zip(&targets).enumerate() {
                    // At step 2 the second parameter takes no part: no gradient.
                    if step == 2 && i == 1 {
                        continue;
                    }
                    loss = (loss + (var.as_tensor() - target)?.sqr()?.sum_all()?)?;
                }
                optimizer.step_with(&loss.backward()?)?;
            }
        }
        let values = |v: &Var| v.as_tensor().flatten_all()?.to_vec1::<f64>();
        for ((ours, theirs), start) in ours_vars.iter().zip(&theirs_vars).zip(&starts) {
            assert_eq!(values(ours)?, values(theirs)?);
            assert_ne!(values(ours)?, start.flatten_all()?.to_vec1::<f64>()?);
        }
        Ok(())
    }

    /// Three steps, the moments saved into a fresh optimizer, two more steps: the same
    /// parameters, to the bit, as five steps of one optimizer.
    #[test]
    fn restored_moments_continue_exactly() -> Result<()> {
        // An f32 parameter (updated on its own) between two f64 ones (updated together):
        // the saved moments must come back to the right parameters in the right order.
        let device = Device::Cpu;
        let shapes: [(&[usize], DType); 3] =
            [(&[3], DType::F64), (&[5, 2], DType::F32), (&[2, 2], DType::F64)];
        let random = || {
            shapes
                .iter()
                .map(|&(shape, dtype)| Tensor::randn(0f32, 1.0, shape, &device)?.to_dtype(dtype))
                .collect::<Result<Vec<_>>>()
        };
        let (starts, targets) = (random()?, random()?);
        let params = ParamsAdamW { lr: 0.05, weight_decay: 0.1, ..Default::default() };
        let step = |vars: &[Var], optimizer: &mut FusedAdamW| -> Result<()> {
            let mut loss = Tensor::new(0f64, &device)?;
            for (var, target) in vars.iter().zip(&targets) {
                let term = (var.as_tensor() - target)?.sqr()?.sum_all()?;
                loss = (loss + term.to_dtype(DType::F64)?)?;
            }
            optimizer.step(&loss.backward()?)
        };
        let vars = || starts.iter().map(Var::from_tensor).collect::<Result<Vec<_>>>();
        let whole = vars()?;
        let mut one = FusedAdamW::new(whole.clone(), params.clone())?;
        for _ in 0..5 {
            step(&whole, &mut one)?;
        }
        let split = vars()?;
        let mut before = FusedAdamW::new(split.clone(), params.clone())?;
        for _ in 0..3 {
            step(&split, &mut before)?;
        }
        let (steps, moments) = before.moments()?;
        assert_eq!(steps, 3);
        for ((first, _), start) in moments.iter().zip(&starts) {
            assert_eq!(first.shape(), start.shape());
        }
        let mut after = FusedAdamW::new(split.clone(), params.clone())?;
        after.restore(steps, moments)?;
        for _ in 0..2 {
            step(&split, &mut after)?;
        }
        let bits = |vars: &[Var]| {
            vars.iter()
                .map(|v| v.as_tensor().flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>())
                .collect::<Result<Vec<_>>>()
        };
        assert_eq!(bits(&whole)?, bits(&split)?);
        // Without the moments the continuation differs: the test can tell.
        let fresh = vars()?;
        let mut forgetful = FusedAdamW::new(fresh.clone(), params.clone())?;
        for _ in 0..3 {
            step(&fresh, &mut forgetful)?;
        }
        let mut restarted = FusedAdamW::new(fresh.clone(), params)?;
        for _ in 0..2 {
            step(&fresh, &mut restarted)?;
        }
        let (whole, fresh) = (bits(&whole)?, bits(&fresh)?);
        for (whole, fresh) in whole.iter().zip(&fresh) {
            assert_ne!(whole, fresh);
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
