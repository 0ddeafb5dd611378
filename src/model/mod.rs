//! The multimodal fusion classifier that trains on cached encoder features.
//!
//! text layers ─┐                       ┌─ contrastive alignment (text, image, fused)
//!              ├─ projections → cross-attention fusion → mixture of experts → classifier
//! image layers ┘
//!
//! Every part can be switched off through [`crate::config::Ablation`]. All trainable
//! paths use ops that have a backward pass (candle's fused layer-norm and softmax do not;
//! see `layers`).

mod classifier;
mod contrastive;
mod fusion;
pub mod layers;
mod lexical;
pub mod loss;
mod moe;
mod projection;
pub mod seeded_init;
mod text_top;

use std::collections::HashMap;

use candle_core::{DType, Device, Result, Tensor, D};
use candle_nn::{VarBuilder, VarMap};

use crate::config::{Ablation, ModelConfig};

use classifier::{Classifier, ClassifierInput};
pub use contrastive::ContrastivePair;
use contrastive::{info_nce, rows_with_image};
use fusion::Fusion;
use layers::{as_mask, dropout_rng, mean_over_layers, Dropout, FeedForward};
use lexical::LexicalExpert;
use moe::{load_balance_loss, MixtureOfExperts};
use projection::LayerProjection;
pub use seeded_init::SeededVarMap;
pub use text_top::{TextTop, TokenBatch, TEXT_TOP};

/// Where each modality's projection keeps its weights (a checkpoint's tensor name prefixes).
const TEXT_PROJECTION: &str = "text_projection";
const IMAGE_PROJECTION: &str = "image_projection";

/// Shapes of the cached features the model consumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeatureDims {
    /// Exposed text layers and their width; `None` when the text stream is off.
    pub text: Option<(usize, usize)>,
    /// Exposed image layers and their width; `None` when the run is text-only.
    pub image: Option<(usize, usize)>,
}

impl FeatureDims {
    /// The feature shapes a saved model was built for, read off its projection weights,
    /// so that a checkpoint can be rebuilt before (and checked against) any features.
    pub fn of_weights(weights: &HashMap<String, Tensor>) -> Result<FeatureDims> {
        Ok(FeatureDims {
            text: projection::input_shape(weights, TEXT_PROJECTION)?,
            image: projection::input_shape(weights, IMAGE_PROJECTION)?,
        })
    }
}

/// One mini-batch of cached features.
pub struct Batch {
    /// `(batch, text_layers, text_dim)`.
    pub text: Option<Tensor>,
    /// Token states for a model with fine-tuned text layers (read instead of `text`).
    pub text_tokens: Option<TokenBatch>,
    /// `(batch, image_layers, image_dim)`.
    pub image: Option<Tensor>,
    /// `(batch,)` f32: 1 where the sample has an image, 0 where it is masked.
    pub image_mask: Option<Tensor>,
    /// `(batch, buckets)` hashed word n-gram features; needed when the lexical expert is on.
    pub lexical: Option<Tensor>,
    /// Single-label: `(batch,)` u32 class ids. Multi-label: `(batch, labels)` f32 0/1.
    /// `None` for unlabelled samples (prediction): `forward` works, `loss` refuses.
    pub targets: Option<Tensor>,
}

pub struct ModelOutput {
    /// `(batch, labels)`.
    pub logits: Tensor,
    /// `(batch, fusion_dim)` embeddings used by the contrastive loss: the mean-pooled
    /// projected layers of each modality (image: `None` when the model is text-only), and
    /// the fused vector after the mixture of experts (the classifier's fused token).
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

/// The fusion classifier. Build it from a [`VarBuilder`] over a `VarMap` (preferably through
/// [`seeded_var_builder`] for reproducible weights), train the `VarMap`'s variables.
pub struct FusionModel {
    /// Fine-tuned top text-encoder layers that make the text stream from token states.
    text_top: Option<TextTop>,
    text_projection: Option<LayerProjection>,
    image_projection: Option<LayerProjection>,
    /// Present when both modalities are.
    fusion: Option<Fusion>,
    mixer: Mixer,
    classifier: Classifier,
    /// `ablation.lexical`: logits from the hashed n-grams, added to the classifier's.
    lexical: Option<LexicalExpert>,
    objective: Objective,
    dims: FeatureDims,
    num_labels: usize,
}

/// What turns the fused vector into the classifier's fused token.
enum Mixer {
    Experts(MixtureOfExperts),
    /// The `moe = false` ablation.
    Single(FeedForward),
}

/// Everything `loss` needs besides the outputs.
struct Objective {
    multi_label: bool,
    /// Enabled pairs whose embeddings the model produces; empty when contrastive is off.
    contrastive_pairs: Vec<ContrastivePair>,
    temperature: f32,
    contrastive_weight: f64,
    /// 0 when the mixture of experts is off or has a single expert.
    load_balance_weight: f64,
}

impl FusionModel {
    /// `dims` says which streams the cached features provide; `ablation.image = false`
    /// drops the image stream even when it is there. `seed` seeds the dropout masks.
    pub fn new(
        vb: VarBuilder,
        config: &ModelConfig,
        ablation: &Ablation,
        dims: FeatureDims,
        num_labels: usize,
        multi_label: bool,
        seed: u64,
    ) -> Result<Self> {
        let dims =
            FeatureDims { text: dims.text, image: if ablation.image { dims.image } else { None } };
        if dims.text.is_none() && dims.image.is_none() {
            candle_core::bail!(
                "the model has no input: the text stream is off (no OCR text and no figurative \
                 reasoning) and there are no image features (vision encoder absent or \
                 ablation.image = false)"
            );
        }
        if num_labels == 0 {
            candle_core::bail!("the model needs at least one label");
        }
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
            dropout,
            vb.pp("classifier"),
        )?;
        let lexical = ablation
            .lexical
            .then(|| LexicalExpert::new(config.lexical_buckets, num_labels, vb.pp("lexical")))
            .transpose()?;
        let contrastive_pairs = ContrastivePair::ALL
            .into_iter()
            .filter(|pair| ablation.contrastive && pair_enabled(ablation, *pair))
            .filter(|pair| match pair {
                ContrastivePair::TextImage => dims.text.is_some() && dims.image.is_some(),
                ContrastivePair::TextFused => dims.text.is_some(),
                ContrastivePair::ImageFused => dims.image.is_some(),
            })
            .collect();
        let use_load_balance = ablation.moe && config.experts > 1;
        let objective = Objective {
            multi_label,
            contrastive_pairs,
            temperature: config.temperature,
            contrastive_weight: config.contrastive_weight as f64,
            load_balance_weight: if use_load_balance {
                config.load_balance_weight as f64
            } else {
                0.0
            },
        };
        Ok(Self {
            text_top: None,
            text_projection,
            image_projection,
            fusion,
            mixer,
            classifier,
            lexical,
            objective,
            dims,
            num_labels,
        })
    }

    /// The model with fine-tuned text layers in front: its text stream then comes from
    /// `top` run on each batch's `text_tokens`, which must have the shape it was built for.
    pub fn with_text_top(mut self, top: TextTop) -> Result<Self> {
        let produced = top.output_dims();
        if self.dims.text != Some(produced) {
            candle_core::bail!(
                "the fine-tuned text layers produce {produced:?} (layers, width) but the model \
                 was built for text features {:?}",
                self.dims.text
            );
        }
        self.text_top = Some(top);
        Ok(self)
    }

    /// Whether the text stream comes from fine-tuned layers (batches need `text_tokens`).
    pub fn fine_tunes_text(&self) -> bool {
        self.text_top.is_some()
    }

    /// `train` enables dropout. With `train = false` the output is a deterministic function
    /// of the batch, and each sample's logits depend on that sample alone.
    pub fn forward(&self, batch: &Batch, train: bool) -> Result<ModelOutput> {
        let from_tokens = match (&self.text_top, &batch.text_tokens) {
            (None, _) => None,
            (Some(top), Some(tokens)) => Some(top.forward(tokens)?),
            (Some(_), None) => candle_core::bail!(
                "the model fine-tunes text layers (text_encoder.finetune_layers) but the batch \
                 has no token states"
            ),
        };
        let text_input = from_tokens.as_ref().or(batch.text.as_ref());
        let text = self.checked_stream("text", text_input, self.dims.text)?;
        let image = self.checked_stream("image", batch.image.as_ref(), self.dims.image)?;
        let image_mask = match image {
            Some(image) => Some(self.image_mask(batch, image)?),
            None => None,
        };
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
        let logits = match (&self.lexical, &batch.lexical) {
            (None, _) => logits,
            (Some(expert), Some(features)) => (logits + expert.forward(features)?)?,
            (Some(_), None) => candle_core::bail!(
                "the model has a lexical expert (ablation.lexical) but the batch has no lexical \
                 features"
            ),
        };
        Ok(ModelOutput { logits, text_embedding, image_embedding, fused_embedding: fused, gates })
    }

    /// Classification (CE or BCE) + weighted contrastive + load-balancing terms:
    /// `total = (1 - w) · classification + w · mean(contrastive) + λ · load_balance` when a
    /// contrastive pair is active, `classification + λ · load_balance` otherwise.
    /// The components are the unweighted terms.
    pub fn loss(&self, output: &ModelOutput, batch: &Batch) -> Result<LossParts> {
        let Some(targets) = &batch.targets else {
            candle_core::bail!("the loss needs labelled samples, but this batch has no targets");
        };
        let targets = targets.to_device(output.logits.device())?;
        let classification = if self.objective.multi_label {
            loss::bce_with_logits(&output.logits, &targets)?
        } else {
            loss::cross_entropy(&output.logits, &targets)?
        };
        let mut components = vec![("classification".to_string(), classification.clone())];

        let mut total = classification.clone();
        if !self.objective.contrastive_pairs.is_empty() {
            let terms = self.contrastive_terms(output, batch)?;
            let w = self.objective.contrastive_weight;
            total = (total * (1.0 - w))?;
            if !terms.is_empty() {
                let mean =
                    (Tensor::stack(&terms.iter().map(|(_, t)| t.clone()).collect::<Vec<_>>(), 0)?
                        .mean_all()?
                        * w)?;
                total = (total + mean)?;
            }
            components.extend(terms.into_iter().map(|(pair, t)| (pair.name().to_string(), t)));
        }
        if self.objective.load_balance_weight > 0.0 {
            if let Some(gates) = &output.gates {
                let balance = load_balance_loss(gates)?;
                total = (total + (balance.clone() * self.objective.load_balance_weight)?)?;
                components.push(("load_balance".to_string(), balance));
            }
        }
        Ok(LossParts { total, components })
    }

    /// Per-label probabilities from logits: softmax (single-label) or sigmoid (multi-label).
    pub fn probabilities(&self, logits: &Tensor) -> Result<Tensor> {
        if self.objective.multi_label {
            candle_nn::ops::sigmoid(logits)
        } else {
            candle_nn::ops::softmax(logits, D::Minus1)
        }
    }

    pub fn num_labels(&self) -> usize {
        self.num_labels
    }

    pub fn multi_label(&self) -> bool {
        self.objective.multi_label
    }

    /// The streams the model reads (image is `None` when ablated or absent).
    pub fn dims(&self) -> FeatureDims {
        self.dims
    }

    /// The contrastive pairs that contribute to the loss.
    pub fn contrastive_pairs(&self) -> &[ContrastivePair] {
        &self.objective.contrastive_pairs
    }

    /// Trainable scalars in `varmap` (for `RunInfo::parameters`).
    pub fn num_parameters(varmap: &VarMap) -> usize {
        varmap.all_vars().iter().map(|var| var.elem_count()).sum()
    }

    /// The active contrastive terms of this batch. Pairs involving the image use only the
    /// samples that have one; a pair with fewer than two samples is skipped.
    fn contrastive_terms(
        &self,
        output: &ModelOutput,
        batch: &Batch,
    ) -> Result<Vec<(ContrastivePair, Tensor)>> {
        let mut terms = Vec::new();
        for &pair in &self.objective.contrastive_pairs {
            let (a, b) = match pair {
                ContrastivePair::TextImage => (&output.text_embedding, &output.image_embedding),
                ContrastivePair::TextFused => {
                    (&output.text_embedding, &Some(output.fused_embedding.clone()))
                }
                ContrastivePair::ImageFused => {
                    (&output.image_embedding, &Some(output.fused_embedding.clone()))
                }
            };
            let (Some(a), Some(b)) = (a, b) else { continue };
            let (a, b) = match (pair.involves_image(), &batch.image_mask) {
                (true, Some(mask)) => (rows_with_image(a, mask)?, rows_with_image(b, mask)?),
                _ => (a.clone(), b.clone()),
            };
            if let Some(term) = info_nce(&a, &b, self.objective.temperature)? {
                terms.push((pair, term));
            }
        }
        Ok(terms)
    }

    /// The stream the model expects, checked against the batch.
    fn checked_stream<'a>(
        &self,
        stream: &str,
        features: Option<&'a Tensor>,
        expected: Option<(usize, usize)>,
    ) -> Result<Option<&'a Tensor>> {
        let Some((layers, width)) = expected else { return Ok(None) };
        let Some(features) = features else {
            candle_core::bail!(
                "the batch has no {stream} features, the model was built for ({layers} layers, \
                 width {width})"
            );
        };
        match features.dims() {
            [_, l, w] if *l == layers && *w == width => Ok(Some(features)),
            other => candle_core::bail!(
                "{stream} features have shape {other:?}, expected (batch, {layers}, {width})"
            ),
        }
    }

    /// The batch's `(B,)` image mask as the features' dtype/device (all present if absent).
    fn image_mask(&self, batch: &Batch, image: &Tensor) -> Result<Tensor> {
        let samples = image.dim(0)?;
        match &batch.image_mask {
            Some(mask) if mask.dims() == [samples] => as_mask(mask, image),
            Some(mask) => {
                candle_core::bail!("image_mask has shape {:?}, expected ({samples},)", mask.dims())
            }
            None => Tensor::ones(samples, image.dtype(), image.device()),
        }
    }
}

fn pair_enabled(ablation: &Ablation, pair: ContrastivePair) -> bool {
    match pair {
        ContrastivePair::TextImage => ablation.contrastive_text_image,
        ContrastivePair::TextFused => ablation.contrastive_text_fused,
        ContrastivePair::ImageFused => ablation.contrastive_image_fused,
    }
}

/// A `VarBuilder` that creates the model's variables in `varmap` with weights drawn from
/// `seed` (see [`SeededVarMap`]): the same seed gives the same initial model.
pub fn seeded_var_builder(varmap: &VarMap, seed: u64, device: &Device) -> VarBuilder<'static> {
    VarBuilder::from_backend(
        Box::new(SeededVarMap::new(varmap.clone(), seed)),
        DType::F32,
        device.clone(),
    )
}
