//! The multimodal fusion classifier that trains on cached encoder features.
//!
//! text layers ─┐                       ┌─ contrastive alignment (text, image, fused)
//!              ├─ projections → cross-attention fusion → mixture of experts → classifier
//! image layers ┘
//!
//! Every part can be switched off through [`crate::config::Ablation`]. All trainable
//! paths use ops that have a backward pass (candle's fused layer-norm and softmax do not;
//! see `layers`).

mod attention_pool;
mod classifier;
mod contrastive;
mod fusion;
pub mod layers;
mod lexical;
pub mod loss;
mod member;
mod moe;
mod projection;
pub mod seeded_init;
mod text_shards;
mod text_top;
mod train_step;

use std::collections::HashMap;

use candle_core::{DType, Device, Result, Tensor, D};
use candle_nn::{VarBuilder, VarMap};

use crate::config::{Ablation, ModelConfig};

pub use contrastive::ContrastivePair;
use contrastive::{info_nce, rows_with_image};
use layers::as_mask;
use member::Member;
use moe::load_balance_loss;
pub use seeded_init::SeededVarMap;
pub use text_top::{TextTop, TEXT_TOP};
pub use train_step::StepLoss;
// The shapes and batches the model consumes are the features layer's types.
pub use crate::features::{FeatureDims, TokenBatch};

/// Where each modality's projection keeps its weights (a checkpoint's tensor name prefixes).
const TEXT_PROJECTION: &str = "text_projection";
/// Where each member's lexical expert keeps its weights (the trainer gives them their own
/// learning rate).
pub const LEXICAL: &str = "lexical";
const IMAGE_PROJECTION: &str = "image_projection";

/// The feature shapes a saved model was built for, read off its projection weights, so
/// that a checkpoint can be rebuilt before (and checked against) any features.
pub fn dims_of_weights(weights: &HashMap<String, Tensor>) -> Result<FeatureDims> {
    Ok(FeatureDims {
        text: projection::input_shape(weights, TEXT_PROJECTION)?,
        image: projection::input_shape(weights, IMAGE_PROJECTION)?,
    })
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
    /// An ensemble's per-member outputs (each member trains on its own loss); empty for a
    /// single member. `logits` are then the ensemble's, whose probabilities are the mean of
    /// the members'; the embeddings and gate weights are the first member's (the experts of
    /// different members are unrelated, so an average of their gates would mean nothing).
    pub members: Vec<ModelOutput>,
}

/// What every member reads: the text and image streams (each optional) and which samples
/// have an image.
struct Streams {
    text: Option<Tensor>,
    image: Option<Tensor>,
    image_mask: Option<Tensor>,
}

impl Streams {
    fn forward(&self, member: &Member, batch: &Batch, train: bool) -> Result<ModelOutput> {
        member.forward(self.text.as_ref(), self.image.as_ref(), &self.image_mask, batch, train)
    }
}

/// The total loss and its named parts (for the dashboard's loss pane).
pub struct LossParts {
    pub total: Tensor,
    pub components: Vec<(String, Tensor)>,
}

impl LossParts {
    /// An ensemble's loss: the mean of its members' (members of one model have the same
    /// components). One member's is its own.
    fn mean(mut members: Vec<LossParts>) -> Result<LossParts> {
        if members.len() == 1 {
            return Ok(members.remove(0));
        }
        let Some(first) = members.first() else {
            candle_core::bail!("the model has no members");
        };
        let mean = |tensors: Vec<Tensor>| Tensor::stack(&tensors, 0)?.mean(0);
        let total = mean(members.iter().map(|p| p.total.clone()).collect())?;
        let components = first
            .components
            .iter()
            .enumerate()
            .map(|(i, (name, _))| {
                Ok((
                    name.clone(),
                    mean(members.iter().map(|p| p.components[i].1.clone()).collect())?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(LossParts { total, components })
    }
}

/// The fusion classifier. Build it from a [`VarBuilder`] over a `VarMap` (preferably through
/// [`seeded_var_builder`] for reproducible weights), train the `VarMap`'s variables.
pub struct FusionModel {
    /// Fine-tuned top text-encoder layers that make the text stream from token states.
    text_top: Option<TextTop>,
    /// One member, or those of an ensemble (`model.ensemble`).
    members: Vec<Member>,
    objective: Objective,
    dims: FeatureDims,
    num_labels: usize,
    /// The dtype the layers compute in: f32, or bf16 under mixed precision (the weights
    /// stay f32 either way; see [`crate::config::Precision`]).
    compute: DType,
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
        let members = (0..config.ensemble.max(1))
            .map(|member| {
                let vb = if member == 0 { vb.clone() } else { vb.pp(format!("member{member}")) };
                let seed = seed.wrapping_add(member as u64);
                Member::new(vb, config, ablation, dims, num_labels, seed)
            })
            .collect::<Result<Vec<_>>>()?;
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
        Ok(Self { text_top: None, members, objective, dims, num_labels, compute: DType::F32 })
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

    /// The model computing in `dtype` (bf16 for mixed precision): its f32 variables are cast
    /// on use, so their gradients stay f32, and its outputs are f32.
    pub fn with_compute_dtype(mut self, dtype: DType) -> Self {
        self.compute = dtype;
        self
    }

    /// The dtype the layers compute in.
    pub fn compute_dtype(&self) -> DType {
        self.compute
    }

    /// Whether the text stream comes from fine-tuned layers (batches need `text_tokens`).
    pub fn fine_tunes_text(&self) -> bool {
        self.text_top.is_some()
    }

    /// Makes the dropout masks of the next training forward pass depend only on the model
    /// seed and `step` (the trainer calls it before every step), not on how many masks were
    /// drawn before: a resumed run then trains exactly like an uninterrupted one.
    pub fn reseed_dropout(&self, step: usize) {
        for member in &self.members {
            member.reseed_dropout(step as u64);
        }
    }

    /// `train` enables dropout. With `train = false` the output is a deterministic function
    /// of the batch, and each sample's logits depend on that sample alone.
    pub fn forward(&self, batch: &Batch, train: bool) -> Result<ModelOutput> {
        let from_tokens = match self.fine_tuned_input(batch)? {
            Some((top, tokens)) => Some(top.forward(tokens, train, self.compute)?),
            None => None,
        };
        let streams = self.streams(batch, from_tokens.as_ref())?;
        let outputs = self
            .members
            .iter()
            .map(|member| streams.forward(member, batch, train))
            .collect::<Result<Vec<_>>>()?;
        self.combine(outputs)
    }

    /// The fine-tuned layers and the batch's token states they run on, when the model has
    /// such layers.
    fn fine_tuned_input<'a>(
        &'a self,
        batch: &'a Batch,
    ) -> Result<Option<(&'a TextTop, &'a TokenBatch)>> {
        match (&self.text_top, &batch.text_tokens) {
            (None, _) => Ok(None),
            (Some(top), Some(tokens)) => Ok(Some((top, tokens))),
            (Some(_), None) => candle_core::bail!(
                "the model fine-tunes text layers (text_encoder.finetune_layers) but the batch \
                 has no token states"
            ),
        }
    }

    /// The members' inputs: the fine-tuned layers' text stream (`from_tokens`) or else the
    /// batch's cached text features, and the image stream, checked against the shapes the
    /// model was built for and in its compute dtype.
    fn streams(&self, batch: &Batch, from_tokens: Option<&Tensor>) -> Result<Streams> {
        let text_input = from_tokens.or(batch.text.as_ref());
        let compute = |t: Option<&Tensor>| t.map(|t| t.to_dtype(self.compute)).transpose();
        let text = compute(self.checked_stream("text", text_input, self.dims.text)?)?;
        let image =
            compute(self.checked_stream("image", batch.image.as_ref(), self.dims.image)?)?;
        let image_mask = match &image {
            Some(image) => Some(self.image_mask(batch, image)?),
            None => None,
        };
        Ok(Streams { text, image, image_mask })
    }

    /// Classification (CE or BCE) + weighted contrastive + load-balancing terms:
    /// `total = (1 - w) · classification + w · mean(contrastive) + λ · load_balance` when a
    /// contrastive pair is active, `classification + λ · load_balance` otherwise.
    /// The components are the unweighted terms.
    /// An ensemble's loss is the mean of its members' (components likewise).
    pub fn loss(&self, output: &ModelOutput, batch: &Batch) -> Result<LossParts> {
        if output.members.is_empty() {
            return self.member_loss(output, batch);
        }
        let parts = output
            .members
            .iter()
            .map(|m| self.member_loss(m, batch))
            .collect::<Result<Vec<_>>>()?;
        LossParts::mean(parts)
    }

    /// One member's loss on its own outputs.
    fn member_loss(&self, output: &ModelOutput, batch: &Batch) -> Result<LossParts> {
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

    /// One member's output as it is; several members' as an ensemble (see [`ModelOutput`]).
    fn combine(&self, mut outputs: Vec<ModelOutput>) -> Result<ModelOutput> {
        if outputs.len() == 1 {
            return Ok(outputs.remove(0));
        }
        let mean = |tensors: Vec<Tensor>| Tensor::stack(&tensors, 0)?.mean(0);
        let probabilities = mean(
            outputs.iter().map(|o| self.probabilities(&o.logits)).collect::<Result<Vec<_>>>()?,
        )?;
        // Logits whose softmax / sigmoid gives back the mean probabilities.
        let logits = if self.objective.multi_label {
            let p = probabilities.clamp(1e-7f32, 1.0 - 1e-7)?;
            (p.log()? - p.affine(-1.0, 1.0)?.log()?)?
        } else {
            probabilities.clamp(1e-30f32, 1.0)?.log()?
        };
        let first = &outputs[0];
        Ok(ModelOutput {
            logits,
            text_embedding: first.text_embedding.clone(),
            image_embedding: first.image_embedding.clone(),
            fused_embedding: first.fused_embedding.clone(),
            gates: first.gates.clone(),
            members: outputs,
        })
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
