//! Classification losses, written from ops that have a backward pass.

use candle_core::{DType, Result, Tensor, D};

/// `log softmax(x)` over the last dimension: `x - max - log Σ exp(x - max)`.
///
/// The max is detached: it only keeps `exp` in range, and the result does not depend on it.
pub fn log_softmax(logits: &Tensor) -> Result<Tensor> {
    let shifted = logits.broadcast_sub(&logits.max_keepdim(D::Minus1)?.detach())?;
    let log_normaliser = shifted.exp()?.sum_keepdim(D::Minus1)?.log()?;
    shifted.broadcast_sub(&log_normaliser)
}

/// Mean cross-entropy of `(B, C)` logits against `(B,)` class ids.
pub fn cross_entropy(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let (batch, classes) = logits.dims2()?;
    if targets.dims() != [batch] {
        candle_core::bail!(
            "single-label targets must be ({batch},) class ids, got shape {:?}",
            targets.dims()
        );
    }
    let targets = targets.to_dtype(DType::U32)?;
    let max_target = targets.max(0)?.to_scalar::<u32>()? as usize;
    if max_target >= classes {
        candle_core::bail!("target class {max_target} is out of range for {classes} classes");
    }
    let picked = log_softmax(logits)?.gather(&targets.unsqueeze(1)?, 1)?;
    picked.neg()?.mean_all()
}

/// Mean binary cross-entropy with logits over all `(B, C)` entries, in the stable form
/// `max(x, 0) - x·y + log(1 + exp(-|x|))` that never exponentiates a large positive number.
pub fn bce_with_logits(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    if logits.dims() != targets.dims() {
        candle_core::bail!(
            "multi-label targets must match the logits' shape {:?}, got {:?}",
            logits.dims(),
            targets.dims()
        );
    }
    let targets = targets.to_dtype(logits.dtype())?;
    let softplus_tail = (logits.abs()?.neg()?.exp()? + 1.0)?.log()?;
    let loss = ((logits.relu()? - logits.mul(&targets)?)? + softplus_tail)?;
    loss.mean_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn scalar(t: Tensor) -> f32 {
        t.to_scalar::<f32>().unwrap()
    }

    #[test]
    fn cross_entropy_matches_the_definition() {
        let logits = Tensor::new(&[[1f32, 2., 3.], [1., 1., 1.]], &Device::Cpu).unwrap();
        let targets = Tensor::new(&[2u32, 0], &Device::Cpu).unwrap();
        let lse = (1f32.exp() + 2f32.exp() + 3f32.exp()).ln();
        let expected = ((lse - 3.0) + 3f32.ln()) / 2.0;
        assert!((scalar(cross_entropy(&logits, &targets).unwrap()) - expected).abs() < 1e-6);
    }

    #[test]
    fn log_softmax_survives_huge_logits() {
        let logits = Tensor::new(&[[1000f32, 0.0, -1000.0]], &Device::Cpu).unwrap();
        let values: Vec<Vec<f32>> = log_softmax(&logits).unwrap().to_vec2().unwrap();
        assert_eq!(values[0][0], 0.0);
        assert_eq!(values[0][1], -1000.0);
        assert!(values[0].iter().all(|v| v.is_finite()));
    }

    #[test]
    fn cross_entropy_rejects_bad_targets() {
        let logits = Tensor::zeros((2, 3), DType::F32, &Device::Cpu).unwrap();
        let out_of_range = Tensor::new(&[0u32, 3], &Device::Cpu).unwrap();
        let err = cross_entropy(&logits, &out_of_range).unwrap_err().to_string();
        assert!(err.contains("class 3 is out of range for 3 classes"), "{err}");
        let wrong_shape = Tensor::zeros((2, 3), DType::U32, &Device::Cpu).unwrap();
        assert!(cross_entropy(&logits, &wrong_shape).is_err());
    }

    #[test]
    fn bce_matches_the_naive_formula_and_stays_finite() {
        let x = [-2f32, -0.5, 0.0, 0.7, 3.0, 1.5];
        let y = [0f32, 1., 1., 0., 1., 1.];
        let naive: f32 = x
            .iter()
            .zip(&y)
            .map(|(x, y)| {
                let p = 1.0 / (1.0 + (-x).exp());
                -(y * p.ln() + (1.0 - y) * (1.0 - p).ln())
            })
            .sum::<f32>()
            / 6.0;
        let logits = Tensor::from_slice(&x, (2, 3), &Device::Cpu).unwrap();
        let targets = Tensor::from_slice(&y, (2, 3), &Device::Cpu).unwrap();
        assert!((scalar(bce_with_logits(&logits, &targets).unwrap()) - naive).abs() < 1e-5);

        // Confidently wrong by 100 logits costs 100, confidently right costs ~0: no inf/NaN.
        let logits = Tensor::new(&[[100f32, -100.0]], &Device::Cpu).unwrap();
        let targets = Tensor::new(&[[0f32, 0.0]], &Device::Cpu).unwrap();
        assert!((scalar(bce_with_logits(&logits, &targets).unwrap()) - 50.0).abs() < 1e-4);
    }
}
