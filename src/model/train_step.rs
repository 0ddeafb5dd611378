//! One training step's loss and gradients, with the work spread over the CPU's cores.
//!
//! candle's CPU backend splits matrix products over threads but runs every other op, and
//! the whole backward walk, on the calling thread. Two facts about this model let the step
//! itself run in parallel instead:
//! - the loss is the mean of the ensemble members' losses, and a member's loss depends only
//!   on the shared input streams, the batch and that member's own weights: each member runs
//!   forward, loss and backward on its own thread, and their gradients are added (the
//!   shared text stream's included);
//! - fine-tuned text layers see each text alone: they run as [`TextShards`] of the batch,
//!   which complete their weights' gradients from the text stream's summed gradient.
//!
//! The loss and every gradient equal those of one backward walk over the whole batch up to
//! rounding (sums taken in another order). On a GPU the step is that one walk: its kernels
//! are already parallel.

use candle_core::backprop::GradStore;
use candle_core::Result;
use rayon::prelude::*;

use super::text_shards::TextShards;
use super::{Batch, FusionModel, LossParts};

/// A step's loss and its named parts as numbers (for the step's event).
#[derive(Debug, Clone, PartialEq)]
pub struct StepLoss {
    /// The mean of the members' total losses.
    pub total: f32,
    /// Each unweighted term, averaged over the members.
    pub components: Vec<(String, f32)>,
}

impl FusionModel {
    /// The training loss of `batch` (dropout on) and the gradients of every variable.
    pub fn loss_and_gradients(&self, batch: &Batch) -> Result<(StepLoss, GradStore)> {
        if !self.runs_on_cpu(batch) {
            // One backward walk: a GPU's kernels are parallel already, and per-member walks
            // would each go back through the shared fine-tuned layers.
            let parts = self.loss(&self.forward(batch, true)?, batch)?;
            let grads = parts.total.backward()?;
            return Ok((scalars(&parts)?, grads));
        }
        // The members' graphs end at the shards' leaves, so no member's backward walk goes
        // through the fine-tuned layers: the shards do that once.
        let (from_tokens, shards) = match self.fine_tuned_input(batch)? {
            Some((top, tokens)) => {
                let (text, shards) = TextShards::forward(top, tokens, self.compute)?;
                (Some(text), shards)
            }
            None => (None, TextShards::default()),
        };
        let streams = self.streams(batch, from_tokens.as_ref())?;
        let share = 1.0 / self.members.len() as f64;
        let steps = self
            .members
            .par_iter()
            .map(|member| -> Result<(LossParts, GradStore)> {
                let parts = self.member_loss(&streams.forward(member, batch, true)?, batch)?;
                let grads = (&parts.total * share)?.backward()?;
                Ok((parts, grads))
            })
            .collect::<Result<Vec<_>>>()?;

        let (parts, member_grads): (Vec<_>, Vec<_>) = steps.into_iter().unzip();
        let mut member_grads = member_grads.into_iter();
        let Some(mut grads) = member_grads.next() else {
            candle_core::bail!("the model has no members");
        };
        for more in member_grads {
            add_gradients(&mut grads, &more)?;
        }
        shards.backward_into(&mut grads)?;
        Ok((scalars(&LossParts::mean(parts)?)?, grads))
    }

    /// Whether the batch's tensors live in main memory (a batch has at least one stream).
    fn runs_on_cpu(&self, batch: &Batch) -> bool {
        let any = batch
            .text_tokens
            .as_ref()
            .map(|t| &t.states)
            .or(batch.text.as_ref())
            .or(batch.image.as_ref())
            .or(batch.lexical.as_ref());
        any.is_none_or(|t| t.device().is_cpu())
    }
}

/// Adds every gradient of `more` into `grads` (a variable missing from `grads` gets it).
pub(super) fn add_gradients(grads: &mut GradStore, more: &GradStore) -> Result<()> {
    let ids = more.get_ids().copied().collect::<Vec<_>>();
    for id in ids {
        let Some(grad) = more.get_id(id) else { continue };
        let sum = match grads.get_id(id) {
            Some(earlier) => (earlier + grad)?,
            None => grad.clone(),
        };
        grads.insert_id(id, sum);
    }
    Ok(())
}

fn scalars(parts: &LossParts) -> Result<StepLoss> {
    Ok(StepLoss {
        total: parts.total.to_scalar::<f32>()?,
        components: parts
            .components
            .iter()
            .map(|(name, value)| Ok((name.clone(), value.to_scalar::<f32>()?)))
            .collect::<Result<Vec<_>>>()?,
    })
}
