//! The lexical expert: a linear model over the hashed word n-gram features, whose logits
//! are added to the fusion classifier's — a product of experts between the dense encoder
//! view and the sparse bag-of-n-grams view (which alone is a strong baseline on meme text).

use candle_core::{Result, Tensor};
use candle_nn::{Init, VarBuilder};

pub struct LexicalExpert {
    /// `(labels, buckets)`.
    weight: Tensor,
    buckets: usize,
}

impl LexicalExpert {
    /// Zero-initialised, so training starts from the dense model alone and the lexical
    /// evidence is added as it is learned. No bias: the classifier head has one.
    pub fn new(buckets: usize, num_labels: usize, vb: VarBuilder) -> Result<Self> {
        let weight = vb.get_with_hints((num_labels, buckets), "weight", Init::Const(0.0))?;
        Ok(Self { weight, buckets })
    }

    /// `(batch, buckets)` features to `(batch, labels)` logits.
    pub fn forward(&self, features: &Tensor) -> Result<Tensor> {
        match features.dims() {
            [_, b] if *b == self.buckets => {
                features.matmul(&crate::encoders::ops::as_compute(&self.weight, features)?.t()?)
            }
            other => candle_core::bail!(
                "lexical features have shape {other:?}, expected (batch, {})",
                self.buckets
            ),
        }
    }
}
