//! Softmax and layer normalisation over the last dimension for layers that train: each a
//! single pass over the rows, with a backward pass that is a single pass too.
//!
//! Written from candle's ops (`max`, `sub`, `exp`, `sum`, `div`; `mean`, `sub`, `sqr`,
//! `sqrt`, `div`), each is five to seven graph nodes, and candle's backward gives every node
//! a zero-filled gradient buffer that the node's gradient is then added into: in a
//! fine-tuning step those fills and adds were a fifth of the time, the largest of them on
//! the attention scores. Here
//! - softmax: `y = exp(x - max) / Σ exp(x - max)`; backward `dx = y ⊙ (dy - Σ dy ⊙ y)`;
//! - normalisation: `x̂ = (x - mean) / sqrt(var + ε)` (γ and β are applied by
//!   `row_ops::scale_shift`); backward `dx = (dx̂ - mean(dx̂) - x̂ · mean(dx̂ ⊙ x̂)) / sqrt(var + ε)`.
//!
//! Sums run left to right in f32 like candle's, so results agree with the composed ops to a
//! few units in the last place (tests below), not to the bit. Contiguous f32 CPU tensors take
//! these kernels; anything else (CUDA, bf16) takes the composed ops.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor, D};

use super::row_ops::{fast_path, values};

/// Softmax over the last dimension, with a backward pass.
pub fn softmax_last(xs: &Tensor) -> Result<Tensor> {
    if fast_path(&[xs]) {
        xs.contiguous()?.apply_op1(SoftmaxLast)
    } else {
        candle_nn::ops::softmax(xs, D::Minus1)
    }
}

/// `(x - mean) / sqrt(var + eps)` over the last dimension, with a backward pass.
pub fn normalize_last(xs: &Tensor, eps: f64) -> Result<Tensor> {
    if fast_path(&[xs]) {
        xs.contiguous()?.apply_op1(NormalizeLast { eps: eps as f32 })
    } else {
        let centred = xs.broadcast_sub(&xs.mean_keepdim(D::Minus1)?)?;
        let variance = centred.sqr()?.mean_keepdim(D::Minus1)?;
        centred.broadcast_div(&(variance + eps)?.sqrt()?)
    }
}

fn width(layout: &Layout) -> usize {
    layout.shape().dims().last().copied().unwrap_or(1).max(1)
}

struct SoftmaxLast;

impl CustomOp1 for SoftmaxLast {
    fn name(&self) -> &'static str {
        "softmax-last"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let xs = values(storage, layout, self.name())?;
        let n = width(layout);
        let mut out = vec![0f32; xs.len()];
        for (x, y) in xs.chunks_exact(n).zip(out.chunks_exact_mut(n)) {
            let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0f32;
            for (y, &x) in y.iter_mut().zip(x) {
                *y = (x - max).exp();
                sum += *y;
            }
            y.iter_mut().for_each(|y| *y /= sum);
        }
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }

    fn bwd(&self, _arg: &Tensor, res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(res.contiguous()?.apply_op2_no_bwd(&grad_res.contiguous()?, &SoftmaxLastGrad)?))
    }
}

/// `(y, dy) → y ⊙ (dy - Σ dy ⊙ y)`, row by row.
struct SoftmaxLastGrad;

impl CustomOp2 for SoftmaxLastGrad {
    fn name(&self) -> &'static str {
        "softmax-last-grad"
    }

    fn cpu_fwd(
        &self,
        ys: &CpuStorage,
        ys_layout: &Layout,
        grads: &CpuStorage,
        grads_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let ys = values(ys, ys_layout, self.name())?;
        let grads = values(grads, grads_layout, self.name())?;
        let n = width(ys_layout);
        let mut out = vec![0f32; ys.len()];
        for ((y, g), dx) in
            ys.chunks_exact(n).zip(grads.chunks_exact(n)).zip(out.chunks_exact_mut(n))
        {
            let dot: f32 = y.iter().zip(g).map(|(y, g)| y * g).sum();
            for ((dx, &y), &g) in dx.iter_mut().zip(y).zip(g) {
                *dx = y * (g - dot);
            }
        }
        Ok((CpuStorage::F32(out), ys_layout.shape().clone()))
    }
}

struct NormalizeLast {
    eps: f32,
}

/// A row's mean and `1 / sqrt(var + eps)`.
fn row_stats(x: &[f32], eps: f32) -> (f32, f32) {
    let n = x.len() as f32;
    let mean = x.iter().sum::<f32>() / n;
    let variance = x.iter().map(|x| (x - mean) * (x - mean)).sum::<f32>() / n;
    (mean, 1.0 / (variance + eps).sqrt())
}

impl CustomOp1 for NormalizeLast {
    fn name(&self) -> &'static str {
        "normalize-last"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let xs = values(storage, layout, self.name())?;
        let n = width(layout);
        let mut out = vec![0f32; xs.len()];
        for (x, y) in xs.chunks_exact(n).zip(out.chunks_exact_mut(n)) {
            let (mean, inv_std) = row_stats(x, self.eps);
            for (y, &x) in y.iter_mut().zip(x) {
                *y = (x - mean) * inv_std;
            }
        }
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }

    fn bwd(&self, arg: &Tensor, res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let grad = NormalizeLastGrad { eps: self.eps };
        let (arg, res, grad_res) = (arg.contiguous()?, res.contiguous()?, grad_res.contiguous()?);
        Ok(Some(arg.apply_op3_no_bwd(&res, &grad_res, &grad)?))
    }
}

/// `(x, x̂, dx̂) → (dx̂ - mean(dx̂) - x̂ · mean(dx̂ ⊙ x̂)) / sqrt(var + ε)`, row by row.
struct NormalizeLastGrad {
    eps: f32,
}

impl candle_core::CustomOp3 for NormalizeLastGrad {
    fn name(&self) -> &'static str {
        "normalize-last-grad"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xs_layout: &Layout,
        normed: &CpuStorage,
        normed_layout: &Layout,
        grads: &CpuStorage,
        grads_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let xs = values(xs, xs_layout, self.name())?;
        let normed = values(normed, normed_layout, self.name())?;
        let grads = values(grads, grads_layout, self.name())?;
        let n = width(xs_layout);
        let mut out = vec![0f32; xs.len()];
        let rows = xs.chunks_exact(n).zip(normed.chunks_exact(n)).zip(grads.chunks_exact(n));
        for ((x, (x_hat, g)), dx) in
            rows.map(|((x, h), g)| (x, (h, g))).zip(out.chunks_exact_mut(n))
        {
            let (_, inv_std) = row_stats(x, self.eps);
            let mean_g = g.iter().sum::<f32>() / n as f32;
            let mean_gx = g.iter().zip(x_hat).map(|(g, h)| g * h).sum::<f32>() / n as f32;
            for ((dx, &g), &h) in dx.iter_mut().zip(g).zip(x_hat) {
                *dx = (g - mean_g - h * mean_gx) * inv_std;
            }
        }
        Ok((CpuStorage::F32(out), xs_layout.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// Values with a spread like attention scores and hidden states, some rows far from 0.
    fn inputs() -> Result<Tensor> {
        let xs = Tensor::randn(0f32, 3.0, (3, 5, 37), &Device::Cpu)?;
        xs.broadcast_add(&Tensor::new(&[[[0f32]], [[20.0]], [[-7.5]]], &Device::Cpu)?)
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> Result<f32> {
        (a - b)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()
    }

    /// The values and the gradient of `Σ w ⊙ f(x)` through `f`.
    fn value_and_grad(
        xs: &Tensor,
        weights: &Tensor,
        f: impl Fn(&Tensor) -> Result<Tensor>,
    ) -> Result<(Tensor, Tensor)> {
        let var = Var::from_tensor(xs)?;
        let ys = f(var.as_tensor())?;
        let grads = (&ys * weights)?.sum_all()?.backward()?;
        Ok((ys, grads.get(&var).expect("a gradient").clone()))
    }

    #[test]
    fn softmax_and_its_gradient_match_the_composed_ops() -> Result<()> {
        let (xs, weights) = (inputs()?, Tensor::randn(0f32, 1.0, (3, 5, 37), &Device::Cpu)?);
        let (ours, our_grad) = value_and_grad(&xs, &weights, softmax_last)?;
        let composed = |x: &Tensor| candle_nn::ops::softmax(x, D::Minus1);
        let (theirs, their_grad) = value_and_grad(&xs, &weights, composed)?;
        assert!(max_diff(&ours, &theirs)? < 1e-6);
        assert!(max_diff(&our_grad, &their_grad)? < 1e-6);
        // Rows sum to one, and a strided input reads as its contiguous copy.
        let sums = ours.sum(D::Minus1)?.flatten_all()?.to_vec1::<f32>()?;
        assert!(sums.iter().all(|s| (s - 1.0).abs() < 1e-5), "{sums:?}");
        let strided = xs.transpose(1, 2)?;
        assert_eq!(
            softmax_last(&strided)?.flatten_all()?.to_vec1::<f32>()?,
            softmax_last(&strided.contiguous()?)?.flatten_all()?.to_vec1::<f32>()?
        );
        Ok(())
    }

    #[test]
    fn normalisation_and_its_gradient_match_the_composed_ops() -> Result<()> {
        let (xs, weights) = (inputs()?, Tensor::randn(0f32, 1.0, (3, 5, 37), &Device::Cpu)?);
        let eps = 1e-12;
        let (ours, our_grad) = value_and_grad(&xs, &weights, |x| normalize_last(x, eps))?;
        let composed = |x: &Tensor| {
            let centred = x.broadcast_sub(&x.mean_keepdim(D::Minus1)?)?;
            let variance = centred.sqr()?.mean_keepdim(D::Minus1)?;
            centred.broadcast_div(&(variance + eps)?.sqrt()?)
        };
        let (theirs, their_grad) = value_and_grad(&xs, &weights, composed)?;
        assert!(max_diff(&ours, &theirs)? < 1e-5, "{}", max_diff(&ours, &theirs)?);
        assert!(max_diff(&our_grad, &their_grad)? < 1e-5, "{}", max_diff(&our_grad, &their_grad)?);
        // Each row: mean 0, variance 1.
        let means = ours.mean(D::Minus1)?.flatten_all()?.to_vec1::<f32>()?;
        assert!(means.iter().all(|m| m.abs() < 1e-5), "{means:?}");
        Ok(())
    }
}
