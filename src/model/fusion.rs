//! Fuses the projected text and image layer tokens into one vector per sample.
//!
//! Bidirectional cross-attention, as in the reference: every exposed text layer queries the
//! image layers, and every image layer queries the text layers (each direction is a
//! post-norm block: residual + layer norm + feed-forward). Because the cached features are
//! one pooled vector per encoder layer, the attended sequence is the other modality's
//! stack of layers, so each query layer picks the image (or text) depth it finds useful.
//!
//! The attended layers are then combined by their mean. We prefer the mean to a learned
//! attention over layers here because the cross-attention already weighs the other
//! modality's layers per sample, the classifier's self-attention sees every layer token
//! again (see `classifier`), and with a few hundred training memes another softmax over
//! three layers mainly adds a way to overfit.
//!
//! Samples without an image must not attend to garbage: their text→image residual is gated
//! off (so their text tokens take the plain text path through the block) and their
//! image→text side is left out of the combination, leaving the fused vector text-only.

use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

use super::layers::{mean_over_layers, AttentionBlock, Dropout};

/// How the two modalities are combined.
#[derive(Debug, Clone)]
pub enum Fusion {
    /// Bidirectional cross-attention, then the mean over layers and modalities.
    CrossAttention { text_to_image: Box<AttentionBlock>, image_to_text: Box<AttentionBlock> },
    /// The `cross_attention = false` ablation: the average of the mean-pooled projections.
    Average,
}

impl Fusion {
    pub fn cross_attention(
        fusion_dim: usize,
        heads: usize,
        dropout: Dropout,
        vb: VarBuilder,
    ) -> Result<Self> {
        let block =
            |name: &str| AttentionBlock::new(fusion_dim, heads, dropout.clone(), vb.pp(name));
        Ok(Self::CrossAttention {
            text_to_image: Box::new(block("text_to_image")?),
            image_to_text: Box::new(block("image_to_text")?),
        })
    }

    /// `text` `(B, Lt, F)`, `image` `(B, Li, F)`, `image_mask` `(B,)` (1 = has an image).
    /// Returns the fused `(B, F)`.
    pub fn forward(
        &self,
        text: &Tensor,
        image: &Tensor,
        image_mask: &Tensor,
        train: bool,
    ) -> Result<Tensor> {
        let (text_side, image_side) = match self {
            Self::CrossAttention { text_to_image, image_to_text } => {
                let text_side =
                    text_to_image.forward(text, image, None, Some(image_mask), train)?;
                let image_side = image_to_text.forward(image, text, None, None, train)?;
                (text_side, image_side)
            }
            Self::Average => (text.clone(), image.clone()),
        };
        average_present(&mean_over_layers(&text_side)?, &mean_over_layers(&image_side)?, image_mask)
    }
}

/// `(text + m · image) / (1 + m)`: the mean of both modalities where the image is present,
/// the text alone where it is masked.
pub fn average_present(text: &Tensor, image: &Tensor, image_mask: &Tensor) -> Result<Tensor> {
    let mask = image_mask.unsqueeze(1)?;
    let summed = text.add(&image.broadcast_mul(&mask)?)?;
    summed.broadcast_div(&(mask + 1.0)?)
}
