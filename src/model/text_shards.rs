//! The fine-tuned text layers of a training step, run as data-parallel shards on the CPU.
//!
//! candle's CPU backend splits matrix products over threads but runs every other op (and
//! the whole backward walk) on the calling thread, so during fine-tuning one core waits
//! while the other adds biases, normalises rows and accumulates gradients. The fine-tuned
//! layers see each text alone (attention stays inside a text), so a batch can be cut
//! into shards of texts that run forward and backward on their own threads. The graph is
//! cut where the layers end:
//!
//! 1. each shard runs the layers (its own graph, up to its pooled text stream `tᵢ`);
//! 2. the heads run once on the whole batch from leaf variables holding copies of the `tᵢ`
//!    (the contrastive and load-balancing terms need the whole batch), and the loss's
//!    backward gives the heads' gradients and `gᵢ = ∂loss/∂tᵢ`;
//! 3. each shard back-propagates `Σ tᵢ ⊙ gᵢ`, whose gradient with respect to the layers'
//!    weights is, by the chain rule, that shard's part of `∂loss/∂θ`; the parts are added
//!    in shard order.
//!
//! The loss and every gradient equal those of the uncut step up to rounding (the weight
//! gradients are summed over two halves instead of in one product). The shard count is
//! fixed, not the machine's thread count, so a seeded run gives the same numbers anywhere.

use candle_core::backprop::GradStore;
use candle_core::{DType, Result, Tensor, Var};
use rayon::prelude::*;

use super::text_top::TextTop;
use super::train_step::add_gradients;
use crate::features::TokenBatch;

/// How many shards a training batch is cut into (the development machine has two cores).
pub const SHARDS: usize = 2;

/// The shards' graphs, kept until the loss's gradients reach their cut.
#[derive(Default)]
pub struct TextShards {
    /// Per shard: its pooled text stream (with the layers' graph behind it), and the leaf
    /// variable the heads read instead.
    parts: Vec<(Tensor, Var)>,
}

impl TextShards {
    /// Runs `top` over `tokens` cut into [`SHARDS`] runs of texts, each on its own thread,
    /// and returns the batch's text stream as the heads should see it: the shards' outputs
    /// joined, behind leaf variables (gradients reach the layers in
    /// [`TextShards::backward_into`]).
    pub fn forward(top: &TextTop, tokens: &TokenBatch, compute: DType) -> Result<(Tensor, Self)> {
        let ranges = shard_ranges(tokens.len(), SHARDS);
        let outputs = ranges
            .into_par_iter()
            .map(|rows| top.forward(&tokens.rows(rows)?, true, compute))
            .collect::<Result<Vec<_>>>()?;
        let parts = outputs
            .into_iter()
            .map(|output| Ok((output.clone(), Var::from_tensor(&output.detach())?)))
            .collect::<Result<Vec<_>>>()?;
        let leaves = parts.iter().map(|(_, leaf)| leaf.as_tensor()).collect::<Vec<_>>();
        Ok((Tensor::cat(&leaves, 0)?, Self { parts }))
    }

    /// Completes `grads` (the loss's, which stop at the leaves) with the layers'
    /// gradients: each shard back-propagates its leaf's gradient on its own thread, and the
    /// shards' gradients are added in shard order. The leaves' own entries are removed.
    pub fn backward_into(self, grads: &mut GradStore) -> Result<()> {
        let seeds = self
            .parts
            .iter()
            .map(|(output, leaf)| match grads.remove(leaf.as_tensor()) {
                Some(grad) => Ok((output, grad)),
                None => candle_core::bail!("the loss does not depend on the text stream"),
            })
            .collect::<Result<Vec<_>>>()?;
        let shard_grads = seeds
            .into_par_iter()
            .map(|(output, grad)| (output * grad)?.sum_all()?.backward())
            .collect::<Result<Vec<_>>>()?;
        for shard in &shard_grads {
            add_gradients(grads, shard)?;
        }
        Ok(())
    }
}

/// `len` rows cut into at most `shards` consecutive runs, as even as possible, none empty.
fn shard_ranges(len: usize, shards: usize) -> Vec<std::ops::Range<usize>> {
    let shards = shards.clamp(1, len.max(1));
    let (base, extra) = (len / shards, len % shards);
    let mut start = 0;
    (0..shards)
        .map(|i| {
            let size = base + usize::from(i < extra);
            start += size;
            start - size..start
        })
        .filter(|range| !range.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_every_row_once_and_none_is_empty() {
        assert_eq!(shard_ranges(32, 2), vec![0..16, 16..32]);
        assert_eq!(shard_ranges(5, 2), vec![0..3, 3..5]);
        assert_eq!(shard_ranges(1, 2), vec![0..1]);
        assert_eq!(shard_ranges(0, 2), Vec::<std::ops::Range<usize>>::new());
    }
}
