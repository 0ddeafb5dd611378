//! The fine-tuned top layers of the text encoder (`text_encoder.finetune_layers = N`).
//!
//! The frozen layers below them ran once, and their output for every token is cached
//! (`features::TokenStates`). Each step runs only these N layers, with backward-safe ops,
//! on a padded batch of those cached states, and pools the text stream from their outputs:
//! the same `(batch, layers, hidden)` the frozen encoder's cached features have, so the
//! rest of the model does not know the difference. With `pooling = "attention"` the pool
//! itself learns too ([`AttentionPool`]).

use std::ops::Range;

use anyhow::{bail, Context};
use candle_core::{DType, Device, Result, Tensor};
use candle_nn::VarMap;

use super::attention_pool::AttentionPool;
use crate::config::Pooling;
use crate::encoders::ops::{attention_bias, Mode};
use crate::encoders::text::pool;
use crate::encoders::text_model::{pretrained_layers, read_config, LayerStack};
use crate::encoders::ModelFiles;
use crate::features::TokenBatch;

/// Where the fine-tuned layers keep their variables (`text_top.{i}.attention.…`, and what
/// they share, e.g. MPNet's `text_top.relative_attention_bias.weight`): a
/// checkpoint's tensor name prefix, and how the trainer tells encoder from head variables.
pub const TEXT_TOP: &str = "text_top";

pub struct TextTop {
    /// The fine-tuned layers, of whichever family the checkpoint is.
    layers: Box<dyn LayerStack>,
    /// How many of the hidden states (the input, then each layer's output) are exposed,
    /// counted from the top.
    exposed: usize,
    pool: TextPool,
    hidden: usize,
}

/// How each exposed state becomes one vector per text.
enum TextPool {
    /// A pooling without weights of its own (`cls`, `mean`).
    Fixed(Pooling),
    /// `attention`: learned token weights.
    Learned(AttentionPool),
}

impl TextTop {
    /// The top `finetune` layers of the encoder in `files`, as variables of `varmap` under
    /// [`TEXT_TOP`] starting from the pretrained weights, exposing `exposed` pooled states.
    pub fn pretrained(
        files: &ModelFiles,
        finetune: usize,
        exposed: usize,
        pooling: Pooling,
        varmap: &VarMap,
        device: &Device,
    ) -> anyhow::Result<Self> {
        if finetune == 0 {
            bail!("fine-tuning needs at least one layer");
        }
        if exposed == 0 || exposed > finetune + 1 {
            bail!(
                "text_encoder.layers = {exposed} must be in 1..={}: fine-tuning {finetune} \
                 layers yields their input and {finetune} outputs",
                finetune + 1
            );
        }
        let total = read_config(&files.config)?.num_layers();
        let Some(first) = total.checked_sub(finetune) else {
            bail!(
                "text_encoder.finetune_layers = {finetune} is more than the {total} layers of `{}`",
                files.spec
            );
        };
        let range: Range<usize> = first..total;
        let (config, layers) =
            pretrained_layers(&files.config, &files.weights, range, varmap, TEXT_TOP, device)
                .with_context(|| {
                    format!("loading the top {finetune} layers of `{}`", files.spec)
                })?;
        let pool = match pooling {
            Pooling::Attention => TextPool::Learned(AttentionPool::new(
                exposed,
                config.hidden_size(),
                varmap,
                device,
            )?),
            Pooling::Cls | Pooling::Mean => TextPool::Fixed(pooling),
        };
        Ok(Self { layers, exposed, pool, hidden: config.hidden_size() })
    }

    /// `(layers exposed, hidden)`: the shape of the text stream this produces per sample.
    pub fn output_dims(&self) -> (usize, usize) {
        (self.exposed, self.hidden)
    }

    /// `(batch, exposed, hidden)`: the pooled top hidden states of the batch, in `compute`
    /// (the layers run in it; fixed pooling averages in f32). `train` picks the
    /// backward-safe ops; evaluation takes the fused ones, which are faster and equal.
    pub fn forward(&self, tokens: &TokenBatch, train: bool, compute: DType) -> Result<Tensor> {
        let mode = if train { Mode::Trainable } else { Mode::Inference };
        let (_, _, width) = tokens.states.dims3()?;
        if width != self.hidden {
            candle_core::bail!(
                "token states have width {width}, the layers expect {}",
                self.hidden
            );
        }
        let input = tokens.states.to_dtype(compute)?;
        let mut states = vec![input.clone()];
        states.extend(self.layers.forward(&input, &tokens.mask, 0..self.layers.len(), mode)?);
        // The attention pool masks padding with the same bias as the layers' attention.
        let bias = attention_bias(&tokens.mask)?;
        let pooled = states[states.len() - self.exposed..]
            .iter()
            .enumerate()
            .map(|(i, state)| match &self.pool {
                TextPool::Learned(attention) => attention.forward(i, state, &bias, mode),
                TextPool::Fixed(pooling) => {
                    pool(&state.to_dtype(DType::F32)?, &tokens.mask, *pooling)
                        .map_err(wrap)?
                        .to_dtype(compute)
                }
            })
            .collect::<Result<Vec<_>>>()?;
        Tensor::stack(&pooled, 1)
    }
}

fn wrap(error: anyhow::Error) -> candle_core::Error {
    candle_core::Error::Msg(format!("{error:#}"))
}
