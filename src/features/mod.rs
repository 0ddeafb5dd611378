//! From a dataset to the tensors the fusion model trains on: the frozen encoders' pooled
//! layer vectors, looked up in (or added to) the feature cache.
//!
//! Encoders are loaded only on a cache miss, so a warm run never pays for them.

mod build;
mod lexical;
mod tokens;

pub use build::{featurize_samples, model_texts, text_cache_key, FeatureInput, FeatureReport};
pub use lexical::{hashed_ngrams, LexicalFeatures, LexicalSpec};
pub use tokens::{TokenBatch, TokenStates};

use std::path::PathBuf;

use anyhow::Result;
use candle_core::Tensor;

/// Shapes of the pooled features (what the fusion model is built for).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeatureDims {
    /// Exposed text layers and their width; `None` when the text stream is off.
    pub text: Option<(usize, usize)>,
    /// Exposed image layers and their width; `None` when the run is text-only.
    pub image: Option<(usize, usize)>,
}

/// Features of a whole dataset file, in sample order.
#[derive(Debug, Clone)]
pub struct Features {
    /// `(samples, text_layers, text_dim)`; `None` when no text stream is used.
    pub text: Option<Tensor>,
    /// Token states entering the fine-tuned text layers, instead of `text`, when
    /// `text_encoder.finetune_layers > 0` (the model pools its own text layers then).
    pub tokens: Option<TokenStates>,
    /// `(samples, image_layers, image_dim)`; `None` when the run is text-only.
    pub image: Option<Tensor>,
    /// Hashed word n-grams of the model text, when the lexical expert is on.
    pub lexical: Option<LexicalFeatures>,
    /// Per sample: its image file when one was found and decodes (masked otherwise).
    /// Kept even for text-only runs, so the error browser can show the meme.
    pub images: Vec<Option<PathBuf>>,
}

impl Features {
    pub fn len(&self) -> usize {
        self.images.len()
    }

    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }

    /// Whether sample `i` has image features (rather than a masked placeholder).
    pub fn image_present(&self, i: usize) -> bool {
        self.image.is_some() && self.images[i].is_some()
    }

    /// The shapes of the pooled features (token states are not pooled yet: their model
    /// decides how many layers it exposes, see `train::build_model`).
    pub fn dims(&self) -> Result<FeatureDims> {
        let dims = |t: &Option<Tensor>| -> Result<Option<(usize, usize)>> {
            Ok(match t {
                Some(t) => {
                    let (_, layers, width) = t.dims3()?;
                    Some((layers, width))
                }
                None => None,
            })
        };
        Ok(FeatureDims { text: dims(&self.text)?, image: dims(&self.image)? })
    }

    /// The rows at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> Result<Features> {
        let index = Tensor::from_vec(
            indices.iter().map(|&i| i as u32).collect::<Vec<_>>(),
            indices.len(),
            &candle_core::Device::Cpu,
        )?;
        let pick = |t: &Option<Tensor>| -> Result<Option<Tensor>> {
            Ok(match t {
                Some(t) => Some(t.index_select(&index, 0)?),
                None => None,
            })
        };
        Ok(Features {
            text: pick(&self.text)?,
            tokens: self.tokens.as_ref().map(|t| t.select(indices)),
            image: pick(&self.image)?,
            lexical: self.lexical.as_ref().map(|l| l.select(indices)),
            images: indices.iter().map(|&i| self.images[i].clone()).collect(),
        })
    }
}
