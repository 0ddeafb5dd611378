//! Contrastive alignment of the text, image and fused embeddings (symmetric InfoNCE).
//!
//! For a batch of paired embeddings `a_k, b_k`, both L2-normalised, the similarity matrix
//! `S = a bᵀ / τ` should pick the matching pair on its diagonal in both directions:
//! `L = (CE(S, diag) + CE(Sᵀ, diag)) / 2`, as in CLIP.

use candle_core::{DType, Result, Tensor, D};

use super::loss::cross_entropy;

/// Which embeddings a contrastive term aligns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContrastivePair {
    TextImage,
    TextFused,
    ImageFused,
}

impl ContrastivePair {
    pub const ALL: [ContrastivePair; 3] = [Self::TextImage, Self::TextFused, Self::ImageFused];

    /// The loss-component name reported to the dashboard.
    pub fn name(self) -> &'static str {
        match self {
            Self::TextImage => "contrastive_text_image",
            Self::TextFused => "contrastive_text_fused",
            Self::ImageFused => "contrastive_image_fused",
        }
    }

    pub fn involves_image(self) -> bool {
        matches!(self, Self::TextImage | Self::ImageFused)
    }
}

/// Scales each row of `(B, F)` to unit length.
pub fn l2_normalise(x: &Tensor) -> Result<Tensor> {
    let norm = (x.sqr()?.sum_keepdim(D::Minus1)? + 1e-12)?.sqrt()?;
    x.broadcast_div(&norm)
}

/// Symmetric InfoNCE between row-paired `(B, F)` embeddings. `None` when the batch has
/// fewer than two pairs, where there is nothing to contrast against.
pub fn info_nce(a: &Tensor, b: &Tensor, temperature: f32) -> Result<Option<Tensor>> {
    let pairs = a.dim(0)?;
    if pairs < 2 {
        return Ok(None);
    }
    if temperature <= 0.0 {
        candle_core::bail!("the contrastive temperature must be positive, got {temperature}");
    }
    let similarity = (l2_normalise(a)?.matmul(&l2_normalise(b)?.t()?)? / temperature as f64)?;
    let diagonal = Tensor::arange(0u32, pairs as u32, a.device())?;
    let a_to_b = cross_entropy(&similarity, &diagonal)?;
    let b_to_a = cross_entropy(&similarity.t()?.contiguous()?, &diagonal)?;
    Ok(Some(((a_to_b + b_to_a)? * 0.5)?))
}

/// The rows of `x` whose mask entry is 1 (samples that have an image).
pub fn rows_with_image(x: &Tensor, image_mask: &Tensor) -> Result<Tensor> {
    let keep: Vec<u32> = image_mask
        .to_dtype(DType::F32)?
        .to_vec1::<f32>()?
        .iter()
        .enumerate()
        .filter(|(_, &m)| m > 0.5)
        .map(|(row, _)| row as u32)
        .collect();
    let keep = Tensor::from_vec(keep.clone(), keep.len(), x.device())?;
    x.index_select(&keep, 0)
}
