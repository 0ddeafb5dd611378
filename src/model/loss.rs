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
