//! The multimodal fusion classifier that trains on cached encoder features.
//!
//! text layers ─┐                       ┌─ contrastive alignment (text, image, fused)
//!              ├─ projections → cross-attention fusion → mixture of experts → classifier
//! image layers ┘
//!
//! Every part can be switched off through [`crate::config::Ablation`]. All trainable
//! paths use ops that have a backward pass (candle's fused layer-norm and softmax do not;
//! see `layers`).

use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

use crate::config::{Ablation, ModelConfig};

/// Shapes of the cached features the model consumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeatureDims {
    /// Exposed text layers and their width; `None` when the text stream is off.
    pub text: Option<(usize, usize)>,
    /// Exposed image layers and their width; `None` when the run is text-only.
    pub image: Option<(usize, usize)>,
}

/// One mini-batch of cached features.
pub struct Batch {
    /// `(batch, text_layers, text_dim)`.
    pub text: Option<Tensor>,
    /// `(batch, image_layers, image_dim)`.
    pub image: Option<Tensor>,
    /// `(batch,)` f32: 1 where the sample has an image, 0 where it is masked.
    pub image_mask: Option<Tensor>,
    /// Single-label: `(batch,)` u32 class ids. Multi-label: `(batch, labels)` f32 0/1.
    pub targets: Tensor,
}

pub struct ModelOutput {
    /// `(batch, labels)`.
    pub logits: Tensor,
    /// `(batch, fusion_dim)` embeddings used by the contrastive loss.
    pub text_embedding: Option<Tensor>,
    pub image_embedding: Option<Tensor>,
    pub fused_embedding: Tensor,
    /// `(batch, experts)` softmax gate weights when the mixture of experts is on.
    pub gates: Option<Tensor>,
}

/// The total loss and its named parts (for the dashboard's loss pane).
pub struct LossParts {
    pub total: Tensor,
    pub components: Vec<(String, Tensor)>,
}

pub struct FusionModel {}

impl FusionModel {
    pub fn new(
        vb: VarBuilder,
        config: &ModelConfig,
        ablation: &Ablation,
        dims: FeatureDims,
        num_labels: usize,
        multi_label: bool,
        seed: u64,
    ) -> Result<Self> {
        let _ = (vb, config, ablation, dims, num_labels, multi_label, seed);
        todo!("helper C")
    }

    /// `train` enables dropout.
    pub fn forward(&self, batch: &Batch, train: bool) -> Result<ModelOutput> {
        let _ = (batch, train);
        todo!("helper C")
    }

    /// Classification (CE or BCE) + weighted contrastive + load-balancing terms.
    pub fn loss(&self, output: &ModelOutput, batch: &Batch) -> Result<LossParts> {
        let _ = (output, batch);
        todo!("helper C")
    }
}

/// STUB (integration placeholder): replaced by helper C's seeded initialiser.
pub struct SeededVarMap;
impl SeededVarMap {
    pub fn new(varmap: candle_nn::VarMap, seed: u64) -> candle_nn::VarMap {
        let _ = seed;
        varmap
    }
}
