//! A per-feature bias added to every row, and a per-feature scale-and-shift (layer norm's
//! `γ · x̂ + β`), with backward passes that sum the gradient over the rows in one pass.
//!
//! candle computes the gradient of a vector broadcast over rows by summing over the
//! leading dimensions, and on the CPU that reduction takes a per-element index division
//! (its fast path covers trailing dimensions only): in a fine-tuning step the bias and
//! layer-norm gradients of the encoder layers and the head were about a tenth of the time.
//! Here the rows are added up in order, row after row, which gives exactly the sums
//! candle's reduction gives (it too adds each row into the total in row order) at the speed
//! of a vectorised add.
//!
//! Contiguous f32 CPU tensors take these kernels; anything else (CUDA, bf16) takes candle's
//! broadcast ops, whose reductions there are fast.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, DType, Device, InplaceOp2};
use candle_core::{Layout, Result};
use candle_core::{Shape, Tensor};

/// `x + bias` with `bias` `(n)` added to every row of `x` `(…, n)`.
pub fn add_bias(x: &Tensor, bias: &Tensor) -> Result<Tensor> {
    if fast_path(&[x, bias]) {
        x.contiguous()?.apply_op2(&bias.contiguous()?, AddBias)
    } else {
        x.broadcast_add(bias)
    }
}

/// [`add_bias`] written into `fresh` itself, which saves the copy of `x` that `add_bias`
/// makes (a frozen encoder's every dense layer pays it). `fresh` must be a tensor nothing
/// else holds: an op's output before any view of it is taken. Where there is a graph to keep
/// (either side tracks a gradient) or no CPU kernel, it is [`add_bias`].
pub fn add_bias_in_place(fresh: Tensor, bias: &Tensor) -> Result<Tensor> {
    let untracked = !fresh.track_op() && !bias.track_op();
    if untracked && fast_path(&[&fresh, bias]) && fresh.is_contiguous() {
        fresh.inplace_op2(&bias.contiguous()?, &AddBiasInPlace)?;
        Ok(fresh)
    } else {
        add_bias(&fresh, bias)
    }
}

/// `x · scale + shift` with `scale` and `shift` `(n)` applied to every row of `x` `(…, n)`.
pub fn scale_shift(x: &Tensor, scale: &Tensor, shift: &Tensor) -> Result<Tensor> {
    if fast_path(&[x, scale, shift]) {
        x.contiguous()?.apply_op3(&scale.contiguous()?, &shift.contiguous()?, ScaleShift)
    } else {
        x.broadcast_mul(scale)?.broadcast_add(shift)
    }
}

/// `(n)`: the sum of the rows of `x` `(…, n)`, in row order.
pub fn sum_rows(x: &Tensor) -> Result<Tensor> {
    if fast_path(&[x]) {
        x.contiguous()?.apply_op1_no_bwd(&SumRows)
    } else {
        let n = x.dim(candle_core::D::Minus1)?;
        x.reshape(((), n))?.sum(0)
    }
}

pub(super) fn fast_path(tensors: &[&Tensor]) -> bool {
    tensors.iter().all(|t| matches!(t.device(), Device::Cpu) && t.dtype() == DType::F32)
}

/// The values of a contiguous f32 tensor.
pub(super) fn values<'a>(storage: &'a CpuStorage, layout: &Layout, op: &str) -> Result<&'a [f32]> {
    match (storage, layout.contiguous_offsets()) {
        (CpuStorage::F32(values), Some((start, end))) => Ok(&values[start..end]),
        _ => candle_core::bail!("{op} expects contiguous f32 values"),
    }
}

/// The row width `n` of `x` and a vector that must be `(n)`.
fn row_width(x: &Layout, vector: &Layout, op: &str) -> Result<usize> {
    let n = x.shape().dims().last().copied().unwrap_or(1);
    if vector.shape().dims() != [n] {
        candle_core::bail!("{op}: a vector of shape {:?} for rows of width {n}", vector.shape());
    }
    Ok(n)
}

struct AddBias;

impl CustomOp2 for AddBias {
    fn name(&self) -> &'static str {
        "add-bias"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
        bias: &CpuStorage,
        bias_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let n = row_width(x_layout, bias_layout, self.name())?;
        let (x, bias) =
            (values(x, x_layout, self.name())?, values(bias, bias_layout, self.name())?);
        let mut out = x.to_vec();
        add_to_rows(&mut out, bias, n);
        Ok((CpuStorage::F32(out), x_layout.shape().clone()))
    }

    fn bwd(
        &self,
        _x: &Tensor,
        _bias: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        Ok((Some(grad.clone()), Some(sum_rows(grad)?)))
    }
}

/// [`AddBias`] into `x`'s own storage.
struct AddBiasInPlace;

impl InplaceOp2 for AddBiasInPlace {
    fn name(&self) -> &'static str {
        "add-bias-in-place"
    }

    fn cpu_fwd(
        &self,
        x: &mut CpuStorage,
        x_layout: &Layout,
        bias: &CpuStorage,
        bias_layout: &Layout,
    ) -> Result<()> {
        let n = row_width(x_layout, bias_layout, self.name())?;
        let bias = values(bias, bias_layout, self.name())?;
        match (x, x_layout.contiguous_offsets()) {
            (CpuStorage::F32(x), Some((start, end))) => add_to_rows(&mut x[start..end], bias, n),
            _ => candle_core::bail!("add-bias-in-place expects contiguous f32 values"),
        }
        Ok(())
    }
}

/// Adds `bias` (`n` values) to each row of `rows`.
fn add_to_rows(rows: &mut [f32], bias: &[f32], n: usize) {
    for row in rows.chunks_exact_mut(n) {
        row.iter_mut().zip(bias).for_each(|(v, b)| *v += b);
    }
}

struct ScaleShift;

impl CustomOp3 for ScaleShift {
    fn name(&self) -> &'static str {
        "scale-shift"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
        scale: &CpuStorage,
        scale_layout: &Layout,
        shift: &CpuStorage,
        shift_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let name = self.name();
        let n = row_width(x_layout, scale_layout, name)?;
        row_width(x_layout, shift_layout, name)?;
        let x = values(x, x_layout, name)?;
        let (scale, shift) =
            (values(scale, scale_layout, name)?, values(shift, shift_layout, name)?);
        let mut out = Vec::with_capacity(x.len());
        for row in x.chunks_exact(n) {
            // Multiply, round, then add: the same roundings as candle's two broadcast ops.
            out.extend(row.iter().zip(scale).zip(shift).map(|((v, s), b)| v * s + b));
        }
        Ok((CpuStorage::F32(out), x_layout.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        scale: &Tensor,
        _shift: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grad_x = grad.broadcast_mul(scale)?;
        let grad_scale = sum_rows(&grad.mul(x)?)?;
        Ok((Some(grad_x), Some(grad_scale), Some(sum_rows(grad)?)))
    }
}

struct SumRows;

impl CustomOp1 for SumRows {
    fn name(&self) -> &'static str {
        "sum-rows"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = values(storage, layout, self.name())?;
        let n = layout.shape().dims().last().copied().unwrap_or(1);
        let mut total = vec![0f32; n];
        for row in x.chunks_exact(n) {
            total.iter_mut().zip(row).for_each(|(t, v)| *t += v);
        }
        Ok((CpuStorage::F32(total), Shape::from(n)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Var;

    /// Bit for bit what candle's broadcast ops compute, forward and backward.
    #[test]
    fn agree_exactly_with_candles_broadcast_ops() -> Result<()> {
        let device = Device::Cpu;
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (3, 5, 7), &device)?)?;
        let scale = Var::from_tensor(&Tensor::randn(1f32, 0.2, 7, &device)?)?;
        let shift = Var::from_tensor(&Tensor::randn(0f32, 0.2, 7, &device)?)?;
        let weights = Tensor::randn(0f32, 1.0, (3, 5, 7), &device)?;
        let bits = |t: &Tensor| -> Result<Vec<u32>> {
            Ok(t.flatten_all()?.to_vec1::<f32>()?.iter().map(|v| v.to_bits()).collect())
        };

        let ours = add_bias(&x, &shift)?;
        let theirs = x.broadcast_add(&shift)?;
        assert_eq!(bits(&ours)?, bits(&theirs)?);
        let (g1, g2) = (
            (ours * &weights)?.sum_all()?.backward()?,
            (theirs * &weights)?.sum_all()?.backward()?,
        );
        for var in [&x, &shift] {
            assert_eq!(bits(g1.get(var).unwrap())?, bits(g2.get(var).unwrap())?);
        }

        let ours = scale_shift(&x, &scale, &shift)?;
        let theirs = x.broadcast_mul(&scale)?.broadcast_add(&shift)?;
        assert_eq!(bits(&ours)?, bits(&theirs)?);
        let (g1, g2) = (
            (ours * &weights)?.sum_all()?.backward()?,
            (theirs * &weights)?.sum_all()?.backward()?,
        );
        for var in [&x, &scale, &shift] {
            let (a, b) = (g1.get(var).unwrap(), g2.get(var).unwrap());
            assert_eq!(bits(a)?, bits(b)?);
            assert!(a.abs()?.sum_all()?.to_scalar::<f32>()? > 0.0);
        }
        Ok(())
    }

    /// In place only where nothing is tracked: the same values, and a graph is never cut.
    #[test]
    fn bias_in_place_equals_add_bias_and_keeps_gradients() -> Result<()> {
        let device = Device::Cpu;
        let x = Tensor::randn(0f32, 1.0, (4, 6), &device)?;
        let bias = Tensor::randn(0f32, 1.0, 6, &device)?;
        let expected = add_bias(&x, &bias)?.to_vec2::<f32>()?;
        let fresh = x.copy()?;
        assert_eq!(add_bias_in_place(fresh.clone(), &bias)?.to_vec2::<f32>()?, expected);
        // It wrote into `fresh`'s own storage (which is why the caller must own it alone).
        assert_eq!(fresh.to_vec2::<f32>()?, expected);

        // A tracked side (a trained bias, or an input with a graph behind it) takes the op
        // with a backward: written in place, the bias would get no gradient.
        let trained_bias = Var::from_tensor(&bias)?;
        let out = add_bias_in_place(x.copy()?, &trained_bias)?;
        assert_eq!(out.to_vec2::<f32>()?, expected);
        let grads = out.sqr()?.sum_all()?.backward()?;
        assert!(grads.get(&trained_bias).unwrap().abs()?.sum_all()?.to_scalar::<f32>()? > 0.0);
        let trained_x = Var::from_tensor(&x)?;
        let out = add_bias_in_place(trained_x.affine(2.0, 0.0)?, &bias)?;
        let grads = out.sqr()?.sum_all()?.backward()?;
        assert!(grads.get(&trained_x).unwrap().abs()?.sum_all()?.to_scalar::<f32>()? > 0.0);
        Ok(())
    }

    #[test]
    fn other_dtypes_take_candles_ops_and_shapes_are_checked() -> Result<()> {
        let device = Device::Cpu;
        let x = Tensor::ones((2, 3), DType::F64, &device)?;
        let bias = Tensor::new(&[1f64, 2., 3.], &device)?;
        assert_eq!(add_bias(&x, &bias)?.to_vec2::<f64>()?, [[2., 3., 4.], [2., 3., 4.]]);
        assert_eq!(sum_rows(&x)?.to_vec1::<f64>()?, [2., 2., 2.]);
        let x = Tensor::ones((2, 3), DType::F32, &device)?;
        assert!(add_bias(&x, &Tensor::ones(4, DType::F32, &device)?).is_err());
        Ok(())
    }
}
