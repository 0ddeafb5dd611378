//! One member of the model: everything from the encoder features to the logits —
//! projections, cross-attention fusion, the mixture of experts, the classifier and the
//! lexical expert. A model is one member, or an ensemble of several (`model.ensemble`)
//! that share the features (and the fine-tuned text layers) but not their weights.

use candle_core::{DType, Result, Tensor};
use candle_nn::VarBuilder;

use super::classifier::{Classifier, ClassifierInput};
use super::fusion::Fusion;
use super::layers::{dropout_rng, mean_over_layers, Dropout, FeedForward};
use super::lexical::LexicalExpert;
use super::moe::MixtureOfExperts;
use super::projection::LayerProjection;
use super::{Batch, FeatureDims, ModelOutput, IMAGE_PROJECTION, LEXICAL, TEXT_PROJECTION};
use crate::config::{Ablation, ModelConfig};

pub(super) struct Member {
    text_projection: Option<LayerProjection>,
    image_projection: Option<LayerProjection>,
    /// Present when both modalities are.
    fusion: Option<Fusion>,
    mixer: Mixer,
    classifier: Classifier,
    /// `ablation.lexical`: logits from the hashed n-grams, added to the classifier's.
    lexical: Option<LexicalExpert>,
    /// Shared by all the member's layers; reseeded from `seed` and the step.
    dropout: Dropout,
    seed: u64,
}

/// What turns the fused vector into the classifier's fused token.
enum Mixer {
    Experts(MixtureOfExperts),
    /// The `moe = false` ablation.
    Single(FeedForward),
}

impl Member {
    /// A member for the streams in `dims` (already filtered by the ablation); `seed` seeds
    /// its dropout masks.
    pub(super) fn new(
        vb: VarBuilder,
        config: &ModelConfig,
        ablation: &Ablation,
        dims: FeatureDims,
        num_labels: usize,
        seed: u64,
    ) -> Result<Self> {
        let width = config.fusion_dim;
        let dropout = Dropout::new(config.dropout, dropout_rng(seed));
        let project = |stream: Option<(usize, usize)>, name: &str| {
            stream
                .map(|(layers, dim)| {
                    LayerProjection::new(layers, dim, width, dropout.clone(), vb.pp(name))
                })
                .transpose()
        };
        let text_projection = project(dims.text, TEXT_PROJECTION)?;
        let image_projection = project(dims.image, IMAGE_PROJECTION)?;
        let fusion = match (dims.text, dims.image, ablation.cross_attention) {
            (Some(_), Some(_), true) => Some(Fusion::cross_attention(
                width,
                config.heads,
                dropout.clone(),
                vb.pp("fusion"),
            )?),
            (Some(_), Some(_), false) => Some(Fusion::Average),
            _ => None,
        };
        let mixer = if ablation.moe {
            Mixer::Experts(MixtureOfExperts::new(
                width,
                config.experts,
                dropout.clone(),
                vb.pp("moe"),
            )?)
        } else {
            Mixer::Single(FeedForward::new(width, 2 * width, width, dropout.clone(), vb.pp("mlp"))?)
        };
        let classifier = Classifier::new(
            width,
            config.heads,
            config.classifier_layers,
            dims.text.map_or(0, |(layers, _)| layers),
            dims.image.map_or(0, |(layers, _)| layers),
            num_labels,
            dropout.clone(),
            vb.pp("classifier"),
        )?;
        let lexical = ablation
            .lexical
            .then(|| LexicalExpert::new(config.lexical_buckets, num_labels, vb.pp(LEXICAL)))
            .transpose()?;
        Ok(Self {
            text_projection,
            image_projection,
            fusion,
            mixer,
            classifier,
            lexical,
            dropout,
            seed,
        })
    }

    /// Makes the next forward pass's dropout masks a function of the member's seed and
    /// `step` alone.
    pub(super) fn reseed_dropout(&self, step: u64) {
        self.dropout.reseed(self.seed ^ step.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    }

    /// The member's outputs for checked streams: `text` `(batch, layers, width)`, `image` with
    /// its `(batch,)` presence mask.
    pub(super) fn forward(
        &self,
        text: Option<&Tensor>,
        image: Option<&Tensor>,
        image_mask: &Option<Tensor>,
        batch: &Batch,
        train: bool,
    ) -> Result<ModelOutput> {
        let text_tokens = match (&self.text_projection, text) {
            (Some(projection), Some(text)) => Some(projection.forward(text, train)?),
            _ => None,
        };
        let image_tokens = match (&self.image_projection, image, &image_mask) {
            (Some(projection), Some(image), Some(mask)) => {
                // Zero the features of samples without an image first, so that whatever the
                // cache holds for them (even NaN) cannot leak through `0 · x`.
                let present =
                    mask.reshape((mask.elem_count(), 1, 1))?.broadcast_as(image.shape())?;
                let image = present.ne(0.0)?.where_cond(image, &image.zeros_like()?)?;
                Some(projection.forward(&image, train)?)
            }
            _ => None,
        };
        let text_embedding = text_tokens.as_ref().map(mean_over_layers).transpose()?;
        let image_embedding = image_tokens.as_ref().map(mean_over_layers).transpose()?;

        let fused = match (&self.fusion, &text_tokens, &image_tokens, &image_mask) {
            (Some(fusion), Some(text), Some(image), Some(mask)) => {
                fusion.forward(text, image, mask, train)?
            }
            // A single modality: its mean-pooled layers are the fused vector.
            _ => text_embedding.clone().or_else(|| image_embedding.clone()).ok_or_else(|| {
                candle_core::Error::Msg("the model has neither text nor image features".into())
            })?,
        };
        let (fused, gates) = match &self.mixer {
            Mixer::Experts(moe) => {
                let (mixed, gates) = moe.forward(&fused, train)?;
                (mixed, Some(gates))
            }
            Mixer::Single(mlp) => (mlp.forward(&fused, train)?, None),
        };
        let logits = self.classifier.forward(
            &ClassifierInput {
                fused: &fused,
                text: text_tokens.as_ref(),
                image: image_tokens.as_ref(),
                image_mask: image_mask.as_ref(),
            },
            train,
        )?;
        // Everything the model returns is f32, whatever dtype the layers computed in: the
        // losses, the metrics and the lexical expert (which reads f32 features) work in f32.
        let logits = logits.to_dtype(DType::F32)?;
        let f32 = |t: Option<Tensor>| t.map(|t| t.to_dtype(DType::F32)).transpose();
        let logits = match (&self.lexical, &batch.lexical) {
            (None, _) => logits,
            (Some(expert), Some(features)) => (logits + expert.forward(features)?)?,
            (Some(_), None) => candle_core::bail!(
                "the model has a lexical expert (ablation.lexical) but the batch has no lexical \
                 features"
            ),
        };
        Ok(ModelOutput {
            logits,
            text_embedding: f32(text_embedding)?,
            image_embedding: f32(image_embedding)?,
            fused_embedding: fused.to_dtype(DType::F32)?,
            gates,
            members: Vec::new(),
        })
    }
}
