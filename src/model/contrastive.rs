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

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn loss(a: &Tensor, b: &Tensor) -> f32 {
        info_nce(a, b, 0.07).unwrap().unwrap().to_scalar::<f32>().unwrap()
    }

    #[test]
    fn matching_pairs_score_low_and_mismatched_pairs_high() {
        let a = Tensor::new(&[[1f32, 0., 0.], [0., 2., 0.], [0., 0., 3.]], &Device::Cpu).unwrap();
        let shuffled =
            a.index_select(&Tensor::new(&[1u32, 2, 0], &Device::Cpu).unwrap(), 0).unwrap();
        // Scale does not matter: embeddings are L2-normalised.
        let aligned = loss(&a, &(&a * 5.0).unwrap());
        assert!(aligned < 1e-4, "aligned pairs cost {aligned}");
        let mismatched = loss(&a, &shuffled);
        assert!(mismatched > 10.0, "mismatched pairs cost only {mismatched}");
    }

    #[test]
    fn fewer_than_two_pairs_give_no_term() {
        let one = Tensor::ones((1, 4), DType::F32, &Device::Cpu).unwrap();
        assert!(info_nce(&one, &one, 0.07).unwrap().is_none());
    }

    #[test]
    fn only_rows_with_an_image_are_kept() {
        let x = Tensor::new(&[[1f32], [2.], [3.], [4.]], &Device::Cpu).unwrap();
        let mask = Tensor::new(&[1f32, 0., 1., 0.], &Device::Cpu).unwrap();
        let kept: Vec<Vec<f32>> = rows_with_image(&x, &mask).unwrap().to_vec2().unwrap();
        assert_eq!(kept, vec![vec![1.0], vec![3.0]]);
        let none = Tensor::zeros(4, DType::F32, &Device::Cpu).unwrap();
        assert_eq!(rows_with_image(&x, &none).unwrap().dim(0).unwrap(), 0);
    }
}
