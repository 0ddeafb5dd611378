//! The exact (erf-based) GELU as one vectorisable pass on the CPU.
//!
//! candle's `gelu_erf` calls a scalar libm `erf` per element, which was about a fifth of
//! MiniLM's encoding time. This computes erf with the rational approximation Eigen and
//! XLA use for f32 (clamped to [-4, 4], where f32 erf is already ±1), which has no
//! branches or table lookups, so the compiler turns the loop into SIMD code. Its error
//! against the exact erf is a few units in the last place.
//!
//! [`gelu_erf_inference`] has no backward pass, like the other fused inference ops (see
//! `ops::Mode`). [`gelu_erf`] has one (`Φ(x) + x φ(x)`, also fused), for every trained
//! layer: the fine-tuned encoder layers (where libm's scalar `erf`, forward and backward,
//! was 5 % of a fine-tuning epoch), the fusion model's feed-forward blocks, the classifier.

use candle_core::{CpuStorage, CustomOp1, DType, Device, Layout, Result, Shape, Tensor};

/// `x * (1 + erf(x / sqrt 2)) / 2`, fused, where the device and dtype allow; candle's
/// `gelu_erf` otherwise (other devices, other dtypes).
pub fn gelu_erf_inference(xs: &Tensor) -> Result<Tensor> {
    if matches!(xs.device(), Device::Cpu) && xs.dtype() == DType::F32 {
        xs.contiguous()?.apply_op1_no_bwd(&FastGeluErf)
    } else {
        xs.gelu_erf()
    }
}

/// The same GELU, with a backward pass: usable in layers that are trained.
pub fn gelu_erf(xs: &Tensor) -> Result<Tensor> {
    if matches!(xs.device(), Device::Cpu) && xs.dtype() == DType::F32 {
        xs.contiguous()?.apply_op1(FastGeluErf)
    } else {
        xs.gelu_erf()
    }
}

struct FastGeluErf;

/// `d gelu / dx`, times the incoming gradient, in one pass (no backward of its own).
struct FastGeluErfGrad;

impl candle_core::CustomOp2 for FastGeluErfGrad {
    fn name(&self) -> &'static str {
        "fast-gelu-erf-grad"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xs_layout: &Layout,
        grad: &CpuStorage,
        grad_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (xs, grad) = (f32_slice(xs, xs_layout)?, f32_slice(grad, grad_layout)?);
        let out: Vec<f32> = xs.iter().zip(grad).map(|(&x, &g)| g * gelu_derivative(x)).collect();
        Ok((CpuStorage::F32(out), xs_layout.shape().clone()))
    }
}

fn f32_slice<'a>(storage: &'a CpuStorage, layout: &Layout) -> Result<&'a [f32]> {
    match (storage, layout.contiguous_offsets()) {
        (CpuStorage::F32(values), Some((start, end))) => Ok(&values[start..end]),
        _ => candle_core::bail!("fast-gelu-erf expects contiguous f32 values"),
    }
}

impl CustomOp1 for FastGeluErf {
    fn name(&self) -> &'static str {
        "fast-gelu-erf"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let CpuStorage::F32(values) = storage else {
            candle_core::bail!("fast-gelu-erf expects f32 values");
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!(
                "fast-gelu-erf expects a contiguous tensor (see gelu_erf_inference)"
            );
        };
        let out: Vec<f32> = values[start..end].iter().map(|&x| gelu(x)).collect();
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let grad = grad_res.contiguous()?;
        Ok(Some(arg.contiguous()?.apply_op2_no_bwd(&grad, &FastGeluErfGrad)?))
    }
}

#[inline(always)]
fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// `Φ(x) + x φ(x)`: the standard normal CDF plus x times its density.
#[inline(always)]
fn gelu_derivative(x: f32) -> f32 {
    const INV_SQRT_2PI: f32 = 0.398_942_3;
    0.5 * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2)) + x * INV_SQRT_2PI * (-0.5 * x * x).exp()
}

/// f32 erf as a ratio of two polynomials in x² (Eigen's `generic_fast_erf_float`).
/// The select at the end compiles to a blend, so the loop stays vectorised.
#[inline(always)]
fn erf(x: f32) -> f32 {
    // Plain multiply-adds rather than `mul_add`: without a target-cpu flag that is a libm
    // call per term, not an instruction.
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = -2.726_142_3e-10_f32;
    p = p * x2 + 2.770_681_4e-8;
    p = p * x2 - 2.101_024e-6;
    p = p * x2 - 5.692_506_4e-5;
    p = p * x2 - 7.349_906_3e-4;
    p = p * x2 - 2.954_6e-3;
    p = p * x2 - 1.609_603_3e-2;
    let mut q = -1.456_607_2e-5_f32;
    q = q * x2 - 2.133_740_6e-4;
    q = q * x2 - 1.682_827e-3;
    q = q * x2 - 7.373_329e-3;
    q = q * x2 - 1.426_474e-2;
    // Beyond |x| = 3.9 the exact erf rounds to ±1 in f32; the ratio would leave ~1e-7.
    if x.abs() >= 3.9 {
        1f32.copysign(x)
    } else {
        x * p / q
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_candle_gelu_erf_across_the_range() -> Result<()> {
        let values: Vec<f32> = (-2000..=2000).map(|i| i as f32 * 0.005).collect();
        let xs = Tensor::new(values.as_slice(), &Device::Cpu)?;
        let ours = gelu_erf_inference(&xs)?.to_vec1::<f32>()?;
        let exact = xs.gelu_erf()?.to_vec1::<f32>()?;
        for ((x, a), b) in values.iter().zip(&ours).zip(&exact) {
            assert!((a - b).abs() <= 1e-6 + 1e-6 * b.abs(), "gelu({x}): {a} vs {b}");
        }
        // Far tails: identity for large positive inputs, zero for large negative ones.
        let tails = Tensor::new(&[-30f32, 30.0], &Device::Cpu)?;
        assert_eq!(gelu_erf_inference(&tails)?.to_vec1::<f32>()?, vec![0.0, 30.0]);
        Ok(())
    }

    #[test]
    fn strided_input_gives_the_same_values() -> Result<()> {
        let xs = Tensor::arange(-3f32, 3.0, &Device::Cpu)?.reshape((2, 3))?.t()?;
        let strided = gelu_erf_inference(&xs)?.to_vec2::<f32>()?;
        let contiguous = gelu_erf_inference(&xs.contiguous()?)?.to_vec2::<f32>()?;
        assert_eq!(strided, contiguous);
        Ok(())
    }

    #[test]
    fn gradient_matches_candle_gelu_erf() -> Result<()> {
        let start = Tensor::arange(-60f32, 60.0, &Device::Cpu)?.affine(0.1, 0.0)?;
        let weights = Tensor::randn(0f32, 1.0, 120, &Device::Cpu)?;
        let grad_of = |f: &dyn Fn(&Tensor) -> Result<Tensor>| -> Result<Vec<f32>> {
            let var = candle_core::Var::from_tensor(&start)?;
            let grads = (f(var.as_tensor())? * &weights)?.sum_all()?.backward()?;
            grads.get(&var).expect("a gradient").to_vec1::<f32>()
        };
        let ours = grad_of(&|x| gelu_erf(x))?;
        let exact = grad_of(&|x| x.gelu_erf())?;
        for (i, (a, b)) in ours.iter().zip(&exact).enumerate() {
            assert!((a - b).abs() < 1e-5, "gradient at {}: {a} vs {b}", start.get(i)?);
        }
        Ok(())
    }
}
