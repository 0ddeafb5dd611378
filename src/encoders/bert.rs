//! BERT and RoBERTa (Devlin et al., 2019; Liu et al., 2019): learned absolute positions
//! and token types, post-norm transformer layers.
//!
//! Written here rather than taken from candle_transformers because the rest of memescope
//! needs what its `BertModel` lacks: every layer's hidden states (the classifier reads the
//! top few), running only layers `k..n` from cached activations of layer `k` (partial
//! fine-tuning), and a [`Mode`] switch to ops that have a backward pass. Registered as a
//! text family in [`super::text_model::FAMILIES`].
//!
//! Follows Hugging Face's `modeling_bert.py` / `modeling_roberta.py` (no dropout: the
//! encoder is used frozen, and fine-tuning its top layers works on cached activations).

use std::ops::Range;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Module, Tensor};
use candle_nn::{Embedding, VarBuilder};
use serde::Deserialize;

use super::ops::{self, Activation, LayerNorm, Mode};
use super::text_model::{self, LayerStack, TextConfig, TextFamily};
use super::transformer_layer::{load_layers, run_layers, LayerNames, LayerShape, TransformerLayer};

/// The text family entry of BERT and its RoBERTa-style relatives.
pub const FAMILY: TextFamily = TextFamily {
    model_types: &["bert", "roberta", "xlm-roberta", "camembert"],
    checkpoint_prefixes: &["", "bert", "roberta"],
    parse: |text| Ok(Box::new(BertConfig::from_json(text)?)),
};

/// Hugging Face's names for the tensors of one BERT layer.
const LAYER_NAMES: LayerNames = LayerNames {
    query: "attention.self.query",
    key: "attention.self.key",
    value: "attention.self.value",
    attention_output: "attention.output.dense",
    attention_norm: "attention.output.LayerNorm",
    intermediate: "intermediate.dense",
    output: "output.dense",
    output_norm: "output.LayerNorm",
};

/// The fields of a Hugging Face BERT/RoBERTa `config.json` that the forward pass uses.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BertConfig {
    #[serde(default)]
    pub model_type: Option<String>,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    #[serde(default = "default_act")]
    pub hidden_act: Activation,
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default)]
    pub pad_token_id: u32,
    #[serde(default)]
    pub position_embedding_type: Option<String>,
}

fn default_act() -> Activation {
    Activation::Gelu
}
fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}

impl BertConfig {
    pub fn from_json(text: &str) -> Result<Self> {
        let config: BertConfig = serde_json::from_str(text).context("not a BERT/RoBERTa config")?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<()> {
        LayerShape::check_heads(self.hidden_size, self.num_attention_heads)?;
        if let Some(kind) = &self.position_embedding_type {
            if kind != "absolute" {
                bail!("position_embedding_type `{kind}` is not supported (only `absolute`)");
            }
        }
        self.variant()?;
        Ok(())
    }

    /// BERT or RoBERTa, from `model_type` (absent means BERT, as in old configs).
    pub fn variant(&self) -> Result<Variant> {
        match self.model_type.as_deref() {
            None | Some("bert") => Ok(Variant::Bert),
            Some("roberta") | Some("xlm-roberta") | Some("camembert") => Ok(Variant::Roberta),
            Some(other) => bail!("model_type `{other}` is not BERT or RoBERTa"),
        }
    }

    fn layer_shape(&self) -> LayerShape {
        LayerShape {
            hidden: self.hidden_size,
            intermediate: self.intermediate_size,
            heads: self.num_attention_heads,
            activation: self.hidden_act,
            layer_norm_eps: self.layer_norm_eps,
        }
    }
}

impl TextConfig for BertConfig {
    fn hidden_size(&self) -> usize {
        self.hidden_size
    }

    fn num_layers(&self) -> usize {
        self.num_hidden_layers
    }

    fn max_input_length(&self) -> usize {
        match self.variant() {
            // RoBERTa positions start at pad_token_id + 1.
            Ok(Variant::Roberta) => {
                self.max_position_embeddings.saturating_sub(self.pad_token_id as usize + 1)
            }
            _ => self.max_position_embeddings,
        }
    }

    fn pad_token_id(&self) -> u32 {
        self.pad_token_id
    }

    fn embeddings(&self, vb: VarBuilder) -> candle_core::Result<Box<dyn text_model::Embeddings>> {
        let variant = self.variant().map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        Ok(Box::new(Embeddings::load(vb, self, variant)?))
    }

    fn layer_stack(
        &self,
        _shared: VarBuilder,
        layers: Vec<VarBuilder>,
    ) -> candle_core::Result<Box<dyn LayerStack>> {
        let layers = load_layers(layers, &self.layer_shape(), &LAYER_NAMES)?;
        Ok(Box::new(BertEncoder { layers }))
    }
}

/// How positions and token types are embedded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// Positions 0.., token types from the tokenizer.
    Bert,
    /// Positions counted over non-padding tokens from `pad_token_id + 1`; token type 0.
    Roberta,
}

/// RoBERTa's position ids, as Hugging Face's `create_position_ids_from_input_ids`:
/// non-padding tokens are numbered `pad + 1, pad + 2, ...`, padding tokens get `pad`.
pub fn roberta_position_ids(input_ids: &Tensor, pad_token_id: u32) -> candle_core::Result<Tensor> {
    let keep = input_ids.ne(pad_token_id)?.to_dtype(DType::F32)?;
    let counted = (keep.cumsum(1)? * &keep)?;
    (counted + pad_token_id as f64)?.to_dtype(DType::U32)
}

struct Embeddings {
    words: Embedding,
    positions: Embedding,
    token_types: Embedding,
    norm: LayerNorm,
    variant: Variant,
    pad_token_id: u32,
}

impl Embeddings {
    fn load(vb: VarBuilder, config: &BertConfig, variant: Variant) -> candle_core::Result<Self> {
        let hidden = config.hidden_size;
        Ok(Self {
            words: candle_nn::embedding(config.vocab_size, hidden, vb.pp("word_embeddings"))?,
            positions: candle_nn::embedding(
                config.max_position_embeddings,
                hidden,
                vb.pp("position_embeddings"),
            )?,
            token_types: candle_nn::embedding(
                config.type_vocab_size,
                hidden,
                vb.pp("token_type_embeddings"),
            )?,
            norm: LayerNorm::load(hidden, config.layer_norm_eps, vb.pp("LayerNorm"))?,
            variant,
            pad_token_id: config.pad_token_id,
        })
    }
}

impl text_model::Embeddings for Embeddings {
    fn forward(
        &self,
        input_ids: &Tensor,
        type_ids: Option<&Tensor>,
        mode: Mode,
    ) -> candle_core::Result<Tensor> {
        let (batch, seq) = input_ids.dims2()?;
        let words = self.words.forward(input_ids)?;
        let type_ids = match (self.variant, type_ids) {
            (Variant::Bert, Some(ids)) => ids.clone(),
            _ => Tensor::zeros((batch, seq), DType::U32, input_ids.device())?,
        };
        let position_ids = match self.variant {
            Variant::Bert => Tensor::arange(0u32, seq as u32, input_ids.device())?
                .unsqueeze(0)?
                .broadcast_as((batch, seq))?
                .contiguous()?,
            Variant::Roberta => roberta_position_ids(input_ids, self.pad_token_id)?,
        };
        let sum = ((words + self.token_types.forward(&type_ids)?)?
            + self.positions.forward(&position_ids)?)?;
        self.norm.forward(&sum, mode)
    }
}

/// BERT's layers: the padding mask is the only bias on the attention scores.
struct BertEncoder {
    layers: Vec<TransformerLayer>,
}

impl LayerStack for BertEncoder {
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
        let bias = ops::attention_bias(attention_mask)?;
        run_layers(&self.layers[layers], hidden, &bias, mode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn tiny_config(model_type: &str) -> BertConfig {
        serde_json::from_value(serde_json::json!({
            "model_type": model_type, "vocab_size": 20, "hidden_size": 16,
            "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 32,
            "max_position_embeddings": 24, "pad_token_id": 1, "type_vocab_size": 2
        }))
        .unwrap()
    }

    #[test]
    fn roberta_positions_count_only_real_tokens_after_the_pad_index() -> Result<()> {
        let ids = Tensor::new(&[[0u32, 7, 8, 2, 1, 1], [0, 9, 2, 1, 1, 1]], &Device::Cpu)?;
        let positions = roberta_position_ids(&ids, 1)?.to_vec2::<u32>()?;
        assert_eq!(positions, vec![vec![2, 3, 4, 5, 1, 1], vec![2, 3, 4, 1, 1, 1]]);
        Ok(())
    }

    #[test]
    fn config_defaults_and_rejections() {
        let config = tiny_config("bert");
        assert_eq!(config.hidden_act, Activation::Gelu);
        assert_eq!(config.layer_norm_eps, 1e-12);
        assert_eq!(config.variant().unwrap(), Variant::Bert);
        assert_eq!(tiny_config("roberta").variant().unwrap(), Variant::Roberta);
        assert_eq!(tiny_config("roberta").max_input_length(), 22);
        assert_eq!(tiny_config("bert").max_input_length(), 24);
        let err = tiny_config("distilbert").validate().unwrap_err().to_string();
        assert!(err.contains("distilbert"), "{err}");
        let act: Activation = serde_json::from_str("\"gelu_new\"").unwrap();
        assert_eq!(act, Activation::GeluNew);
    }

    #[test]
    fn trainable_mode_gives_every_top_layer_variable_a_gradient() -> Result<()> {
        let config = Box::new(tiny_config("bert"));
        // 8 weight/bias pairs in the top layer.
        text_model::tests::check_top_layer_gradients(config, 16)
    }
}
