//! MPNet (Song et al., 2020), e.g. sentence-transformers/all-mpnet-base-v2.
//!
//! BERT's post-norm layers with three differences: positions are RoBERTa's (counted over
//! real tokens from `pad_token_id + 1`), there are no token-type embeddings, and every
//! layer's attention scores get a learned relative-position bias — one scalar per head and
//! distance bucket, looked up once per forward pass and shared by all layers, as T5 does.
//!
//! Follows Hugging Face's `modeling_mpnet.py` (no dropout, as for BERT).

use std::ops::Range;

use anyhow::{bail, Context, Result};
use candle_core::{Module, Tensor};
use candle_nn::{Embedding, VarBuilder};
use serde::Deserialize;

use super::bert::roberta_position_ids;
use super::ops::{self, Activation, LayerNorm, Mode};
use super::text_model::{self, LayerStack, TextConfig, TextFamily};
use super::transformer_layer::{load_layers, run_layers, LayerNames, LayerShape, TransformerLayer};

/// The text family entry of MPNet.
pub const FAMILY: TextFamily = TextFamily {
    model_types: &["mpnet"],
    checkpoint_prefixes: &["", "mpnet"],
    parse: |text| Ok(Box::new(MpnetConfig::from_json(text)?)),
};

/// Hugging Face's names for the tensors of one MPNet layer.
const LAYER_NAMES: LayerNames = LayerNames {
    query: "attention.attn.q",
    key: "attention.attn.k",
    value: "attention.attn.v",
    attention_output: "attention.attn.o",
    attention_norm: "attention.LayerNorm",
    intermediate: "intermediate.dense",
    output: "output.dense",
    output_norm: "output.LayerNorm",
};

/// Relative distances up to this many tokens get their own log-spaced buckets; farther
/// ones share the last. Fixed in MPNet (Hugging Face's `max_distance` default).
const MAX_DISTANCE: usize = 128;

/// The fields of a Hugging Face MPNet `config.json` that the forward pass uses.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct MpnetConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    #[serde(default = "default_act")]
    pub hidden_act: Activation,
    pub max_position_embeddings: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "default_pad")]
    pub pad_token_id: u32,
    #[serde(default = "default_buckets")]
    pub relative_attention_num_buckets: usize,
}

fn default_act() -> Activation {
    Activation::Gelu
}
fn default_eps() -> f64 {
    1e-12
}
fn default_pad() -> u32 {
    1
}
fn default_buckets() -> usize {
    32
}

impl MpnetConfig {
    pub fn from_json(text: &str) -> Result<Self> {
        let config: MpnetConfig = serde_json::from_str(text).context("not an MPNet config")?;
        LayerShape::check_heads(config.hidden_size, config.num_attention_heads)?;
        // Half the buckets per direction, half of those exact distances: at least 4.
        if config.relative_attention_num_buckets < 4 {
            bail!(
                "relative_attention_num_buckets = {} is too few (at least 4)",
                config.relative_attention_num_buckets
            );
        }
        Ok(config)
    }
}

impl TextConfig for MpnetConfig {
    fn hidden_size(&self) -> usize {
        self.hidden_size
    }

    fn num_layers(&self) -> usize {
        self.num_hidden_layers
    }

    fn max_input_length(&self) -> usize {
        // Positions start at pad_token_id + 1, as in RoBERTa.
        self.max_position_embeddings.saturating_sub(self.pad_token_id as usize + 1)
    }

    fn pad_token_id(&self) -> u32 {
        self.pad_token_id
    }

    fn embeddings(&self, vb: VarBuilder) -> candle_core::Result<Box<dyn text_model::Embeddings>> {
        let hidden = self.hidden_size;
        Ok(Box::new(Embeddings {
            words: candle_nn::embedding(self.vocab_size, hidden, vb.pp("word_embeddings"))?,
            positions: candle_nn::embedding(
                self.max_position_embeddings,
                hidden,
                vb.pp("position_embeddings"),
            )?,
            norm: LayerNorm::load(hidden, self.layer_norm_eps, vb.pp("LayerNorm"))?,
            pad_token_id: self.pad_token_id,
        }))
    }

    fn layer_stack(
        &self,
        shared: VarBuilder,
        layers: Vec<VarBuilder>,
    ) -> candle_core::Result<Box<dyn LayerStack>> {
        let shape = LayerShape {
            hidden: self.hidden_size,
            intermediate: self.intermediate_size,
            heads: self.num_attention_heads,
            activation: self.hidden_act,
            layer_norm_eps: self.layer_norm_eps,
        };
        let layers = load_layers(layers, &shape, &LAYER_NAMES)?;
        let relative_attention_bias = candle_nn::embedding(
            self.relative_attention_num_buckets,
            self.num_attention_heads,
            shared.pp("relative_attention_bias"),
        )?;
        Ok(Box::new(MpnetEncoder {
            layers,
            relative_attention_bias,
            num_buckets: self.relative_attention_num_buckets,
        }))
    }
}

struct Embeddings {
    words: Embedding,
    positions: Embedding,
    norm: LayerNorm,
    pad_token_id: u32,
}

impl text_model::Embeddings for Embeddings {
    /// MPNet has no token types: `type_ids` is ignored.
    fn forward(
        &self,
        input_ids: &Tensor,
        _type_ids: Option<&Tensor>,
        mode: Mode,
    ) -> candle_core::Result<Tensor> {
        let positions = roberta_position_ids(input_ids, self.pad_token_id)?;
        let sum = (self.words.forward(input_ids)? + self.positions.forward(&positions)?)?;
        self.norm.forward(&sum, mode)
    }
}

/// MPNet's layers and the relative-position bias they share.
struct MpnetEncoder {
    layers: Vec<TransformerLayer>,
    /// `(buckets, heads)`: one learned score offset per head and distance bucket.
    relative_attention_bias: Embedding,
    num_buckets: usize,
}

impl MpnetEncoder {
    /// `(1, heads, seq, seq)`: the bias of query `i` attending to key `j`, from the bucket of
    /// `j - i`. Positions are the sequence's own indices: padding sits at the end, so real
    /// tokens' distances do not depend on the batch.
    fn position_bias(
        &self,
        seq: usize,
        device: &candle_core::Device,
    ) -> candle_core::Result<Tensor> {
        let buckets: Vec<u32> = (0..seq)
            .flat_map(|query| {
                (0..seq).map(move |key| {
                    relative_position_bucket(key as i64 - query as i64, self.num_buckets)
                })
            })
            .collect();
        let buckets = Tensor::from_vec(buckets, (seq, seq), device)?;
        self.relative_attention_bias.forward(&buckets)?.permute((2, 0, 1))?.unsqueeze(0)
    }
}

impl LayerStack for MpnetEncoder {
    fn len(&self) -> usize {
        self.layers.len()
    }

    fn forward(
        &self,
        hidden: &Tensor,
        attention_mask: &Tensor,
        layers: Range<usize>,
        mode: Mode,
    ) -> candle_core::Result<Vec<Tensor>> {
        let (_, seq, _) = hidden.dims3()?;
        // Both biases are added to the scores before the softmax; summed once here.
        let padding = ops::attention_bias(attention_mask)?;
        let bias = self.position_bias(seq, hidden.device())?.broadcast_add(&padding)?;
        run_layers(&self.layers[layers], hidden, &bias, mode)
    }
}

/// The bucket of a key `relative_position` tokens after the query (negative: before), as
/// Hugging Face's `MPNetEncoder.relative_position_bucket`: half the buckets for keys after
/// the query, half for keys before; in each half, the nearest `num_buckets / 4` distances
/// get one bucket each and the rest are spaced logarithmically up to [`MAX_DISTANCE`],
/// beyond which everything shares the last bucket.
pub fn relative_position_bucket(relative_position: i64, num_buckets: usize) -> u32 {
    let half = num_buckets / 2;
    let max_exact = half / 2;
    // Hugging Face negates first: keys before the query (n > 0) use the lower half.
    let n = -relative_position;
    let direction = if n < 0 { half } else { 0 };
    let distance = n.unsigned_abs() as usize;
    let offset = if distance < max_exact {
        distance
    } else {
        // In f32, as PyTorch computes it, so that boundary distances fall alike.
        let scaled = (distance as f32 / max_exact as f32).ln()
            / (MAX_DISTANCE as f32 / max_exact as f32).ln()
            * (half - max_exact) as f32;
        (max_exact + scaled as usize).min(half - 1)
    };
    (direction + offset) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny_config() -> MpnetConfig {
        MpnetConfig::from_json(
            r#"{"model_type": "mpnet", "vocab_size": 20, "hidden_size": 16,
                "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 32,
                "max_position_embeddings": 24, "pad_token_id": 1, "layer_norm_eps": 1e-5,
                "relative_attention_num_buckets": 32}"#,
        )
        .unwrap()
    }

    #[test]
    fn config_limits() {
        let config = tiny_config();
        assert_eq!(config.max_input_length(), 22);
        assert_eq!(config.hidden_act, Activation::Gelu);
        let err = MpnetConfig::from_json(
            r#"{"vocab_size": 20, "hidden_size": 15, "num_hidden_layers": 2,
                "num_attention_heads": 4, "intermediate_size": 32,
                "max_position_embeddings": 24}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("hidden_size 15"), "{err}");
    }

    /// Hugging Face's `MPNetEncoder.relative_position_bucket` (transformers 5.24.0, PyTorch
    /// 2.15.0) on every relative position in -700..=700 with 32 buckets changes bucket only
    /// between these pairs; the function is monotone on each side, so agreeing on them is
    /// agreeing everywhere. (Computed with `relative_position_bucket(torch.arange(-700,
    /// 701))` and kept where the bucket changes.)
    #[test]
    fn buckets_match_hugging_face() {
        let positions = [
            -700, -91, -90, -64, -63, -46, -45, -32, -31, -23, -22, -16, -15, -12, -11, -8, -7, -6,
            -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 15, 16, 22, 23, 31, 32, 45, 46,
            63, 64, 90, 91, 700,
        ];
        let buckets = [
            15, 15, 14, 14, 13, 13, 12, 12, 11, 11, 10, 10, 9, 9, 8, 8, 7, 6, 5, 4, 3, 2, 1, 0, 17,
            18, 19, 20, 21, 22, 23, 24, 24, 25, 25, 26, 26, 27, 27, 28, 28, 29, 29, 30, 30, 31, 31,
        ];
        assert_eq!(positions.len(), buckets.len());
        for (relative, expected) in positions.into_iter().zip(buckets) {
            assert_eq!(relative_position_bucket(relative, 32), expected, "position {relative}");
        }
    }

    #[test]
    fn trainable_mode_gives_every_top_layer_variable_a_gradient() -> Result<()> {
        // 8 weight/bias pairs in the top layer, and the shared relative-position bias.
        text_model::tests::check_top_layer_gradients(Box::new(tiny_config()), 17)
    }
}
