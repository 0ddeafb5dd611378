//! BERT / RoBERTa encoder layers that expose every hidden layer.
//!
//! Written here rather than taken from candle_transformers because the rest of memescope
//! needs what its `BertModel` lacks: every layer's hidden states (the classifier reads the
//! top few), running only layers `k..n` from cached activations of layer `k` (partial
//! fine-tuning), and a [`Mode`] switch to ops that have a backward pass.
//!
//! Follows Hugging Face's `modeling_bert.py` / `modeling_roberta.py` (no dropout: the
//! encoder is used frozen, and fine-tuning its top layers works on cached activations).

use std::ops::Range;
use std::path::Path;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Embedding, VarBuilder, VarMap};
use serde::Deserialize;

use super::ops::{self, Activation, LayerNorm, Linear, Mode};
use super::weights::{find_prefix, open_weights};

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
    pub fn from_file(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let config: BertConfig = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a BERT/RoBERTa config", path.display()))?;
        config.validate().with_context(|| format!("in {}", path.display()))?;
        Ok(config)
    }

    fn validate(&self) -> Result<()> {
        if self.num_attention_heads == 0
            || !self.hidden_size.is_multiple_of(self.num_attention_heads)
        {
            bail!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size,
                self.num_attention_heads
            );
        }
        if let Some(kind) = &self.position_embedding_type {
            if kind != "absolute" {
                bail!("position_embedding_type `{kind}` is not supported (only `absolute`)");
            }
        }
        self.family()?;
        Ok(())
    }

    /// BERT or RoBERTa, from `model_type` (absent means BERT, as in old configs).
    pub fn family(&self) -> Result<Family> {
        match self.model_type.as_deref() {
            None | Some("bert") => Ok(Family::Bert),
            Some("roberta") | Some("xlm-roberta") | Some("camembert") => Ok(Family::Roberta),
            Some(other) => {
                bail!("model_type `{other}` is not supported by the text encoder (bert or roberta)")
            }
        }
    }

    /// The longest input (special tokens included) the position table can hold.
    pub fn max_input_length(&self) -> usize {
        match self.family() {
            // RoBERTa positions start at pad_token_id + 1.
            Ok(Family::Roberta) => {
                self.max_position_embeddings.saturating_sub(self.pad_token_id as usize + 1)
            }
            _ => self.max_position_embeddings,
        }
    }
}

/// How positions and token types are embedded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
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
    family: Family,
    pad_token_id: u32,
}

impl Embeddings {
    fn load(vb: VarBuilder, config: &BertConfig, family: Family) -> Result<Self> {
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
            family,
            pad_token_id: config.pad_token_id,
        })
    }

    fn forward(&self, input_ids: &Tensor, type_ids: Option<&Tensor>, mode: Mode) -> Result<Tensor> {
        let (batch, seq) = input_ids.dims2()?;
        let words = self.words.forward(input_ids)?;
        let type_ids = match (self.family, type_ids) {
            (Family::Bert, Some(ids)) => ids.clone(),
            _ => Tensor::zeros((batch, seq), DType::U32, input_ids.device())?,
        };
        let position_ids = match self.family {
            Family::Bert => Tensor::arange(0u32, seq as u32, input_ids.device())?
                .unsqueeze(0)?
                .broadcast_as((batch, seq))?
                .contiguous()?,
            Family::Roberta => roberta_position_ids(input_ids, self.pad_token_id)?,
        };
        let sum = ((words + self.token_types.forward(&type_ids)?)?
            + self.positions.forward(&position_ids)?)?;
        Ok(self.norm.forward(&sum, mode)?)
    }
}

struct SelfAttention {
    query: Linear,
    key: Linear,
    value: Linear,
    output: Linear,
    norm: LayerNorm,
    heads: usize,
}

impl SelfAttention {
    fn load(vb: VarBuilder, config: &BertConfig) -> Result<Self> {
        let hidden = config.hidden_size;
        let eps = config.layer_norm_eps;
        Ok(Self {
            query: Linear::load(hidden, hidden, vb.pp("self.query"))?,
            key: Linear::load(hidden, hidden, vb.pp("self.key"))?,
            value: Linear::load(hidden, hidden, vb.pp("self.value"))?,
            output: Linear::load(hidden, hidden, vb.pp("output.dense"))?,
            norm: LayerNorm::load(hidden, eps, vb.pp("output.LayerNorm"))?,
            heads: config.num_attention_heads,
        })
    }

    fn forward(&self, hidden: &Tensor, bias: &Tensor, mode: Mode) -> Result<Tensor> {
        let query = ops::split_heads(&self.query.forward(hidden)?, self.heads)?;
        let key = ops::split_heads(&self.key.forward(hidden)?, self.heads)?;
        let value = ops::split_heads(&self.value.forward(hidden)?, self.heads)?;
        let context = ops::merge_heads(&ops::attention(&query, &key, &value, Some(bias), mode)?)?;
        let projected = self.output.forward(&context)?;
        Ok(self.norm.forward(&(projected + hidden)?, mode)?)
    }
}

/// One transformer block: self-attention, then the feed-forward "intermediate"/"output".
pub struct BertLayer {
    attention: SelfAttention,
    intermediate: Linear,
    activation: Activation,
    output: Linear,
    norm: LayerNorm,
}

impl BertLayer {
    /// Builds the layer from the tensors under `vb` (`attention.*`, `intermediate.*`,
    /// `output.*`), or creates them when `vb` is backed by a `VarMap`.
    pub fn load(vb: VarBuilder, config: &BertConfig) -> Result<Self> {
        let (hidden, inner) = (config.hidden_size, config.intermediate_size);
        Ok(Self {
            attention: SelfAttention::load(vb.pp("attention"), config)?,
            intermediate: Linear::load(hidden, inner, vb.pp("intermediate.dense"))?,
            activation: config.hidden_act,
            output: Linear::load(inner, hidden, vb.pp("output.dense"))?,
            norm: LayerNorm::load(hidden, config.layer_norm_eps, vb.pp("output.LayerNorm"))?,
        })
    }

    /// `bias` is [`ops::attention_bias`] of the padding mask.
    pub fn forward(&self, hidden: &Tensor, bias: &Tensor, mode: Mode) -> Result<Tensor> {
        let attended = self.attention.forward(hidden, bias, mode)?;
        let inner = self.activation.forward(&self.intermediate.forward(&attended)?, mode)?;
        let out = self.output.forward(&inner)?;
        Ok(self.norm.forward(&(out + attended)?, mode)?)
    }
}

/// A BERT or RoBERTa encoder (no pooler, no task head).
pub struct BertModel {
    config: BertConfig,
    family: Family,
    embeddings: Embeddings,
    layers: Vec<BertLayer>,
    mode: Mode,
}

impl BertModel {
    /// Builds the model from tensors at the root of `vb` (`embeddings.*`, `encoder.layer.*`).
    /// With a `VarMap`-backed builder this creates freshly initialised variables.
    pub fn new(vb: VarBuilder, config: &BertConfig) -> Result<Self> {
        let family = config.family()?;
        let embeddings = Embeddings::load(vb.pp("embeddings"), config, family)?;
        let layers = (0..config.num_hidden_layers)
            .map(|index| BertLayer::load(vb.pp(format!("encoder.layer.{index}")), config))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { config: config.clone(), family, embeddings, layers, mode: Mode::Inference })
    }

    /// Loads `config.json` and the weights, wherever the checkpoint nests the encoder
    /// (`bert.`, `roberta.` or at the root).
    pub fn from_files(config_path: &Path, weights_path: &Path, device: &Device) -> Result<Self> {
        let config = BertConfig::from_file(config_path)?;
        let vb = open_weights(weights_path, device)?;
        let prefix = find_prefix(
            &vb,
            &["", "bert", "roberta"],
            "embeddings.word_embeddings.weight",
            weights_path,
        )?;
        let vb = if prefix.is_empty() { vb } else { vb.pp(prefix) };
        BertModel::new(vb, &config)
            .with_context(|| format!("loading the encoder from {}", weights_path.display()))
    }

    pub fn config(&self) -> &BertConfig {
        &self.config
    }

    pub fn family(&self) -> Family {
        self.family
    }

    pub fn hidden_size(&self) -> usize {
        self.config.hidden_size
    }

    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Fused kernels for frozen inference, or backward-safe ops for fine-tuning.
    pub fn set_mode(&mut self, mode: Mode) {
        self.mode = mode;
    }

    /// The embedding layer's output `(batch, seq, hidden)`: hidden state 0.
    /// `type_ids` defaults to all zeros (and is ignored by RoBERTa, which has one type).
    pub fn embed(&self, input_ids: &Tensor, type_ids: Option<&Tensor>) -> Result<Tensor> {
        self.embeddings.forward(input_ids, type_ids, self.mode)
    }

    /// Runs the layers `layers` (0-based; layer `i` turns hidden state `i` into `i + 1`)
    /// on `hidden`, the hidden state `layers.start`, with the `(batch, seq)` 0/1 padding
    /// mask. Returns the output of each layer run, i.e. hidden states
    /// `layers.start + 1 ..= layers.end`.
    pub fn forward_layers(
        &self,
        hidden: &Tensor,
        attention_mask: &Tensor,
        layers: Range<usize>,
    ) -> Result<Vec<Tensor>> {
        if layers.start > layers.end || layers.end > self.layers.len() {
            bail!("layer range {layers:?} is outside the model's {} layers", self.layers.len());
        }
        let bias = ops::attention_bias(attention_mask)?;
        let mut outputs = Vec::with_capacity(layers.len());
        let mut current = hidden.clone();
        for layer in &self.layers[layers] {
            current = layer.forward(&current, &bias, self.mode)?;
            outputs.push(current.clone());
        }
        Ok(outputs)
    }

    /// All hidden states, as Hugging Face's `output_hidden_states`: the embeddings followed
    /// by every layer's output (`num_layers + 1` tensors of `(batch, seq, hidden)`).
    pub fn hidden_states(
        &self,
        input_ids: &Tensor,
        type_ids: Option<&Tensor>,
        attention_mask: &Tensor,
    ) -> Result<Vec<Tensor>> {
        let embedded = self.embed(input_ids, type_ids)?;
        let mut states = vec![embedded.clone()];
        states.extend(self.forward_layers(&embedded, attention_mask, 0..self.layers.len())?);
        Ok(states)
    }
}

/// Layers `layers` of a checkpoint as trainable variables of `varmap`, named
/// `{prefix}.{i}.…` with `i` counted from 0 within the range and the rest of each name as in
/// the checkpoint (`attention.self.query.weight`, …), holding the checkpoint's weights.
/// Saving `varmap` thus saves the fine-tuned layers; loading a saved `varmap` over them
/// restores them. Returns the checkpoint's config with the layers.
pub fn pretrained_layers(
    config_path: &Path,
    weights_path: &Path,
    layers: Range<usize>,
    varmap: &VarMap,
    prefix: &str,
    device: &Device,
) -> Result<(BertConfig, Vec<BertLayer>)> {
    let config = BertConfig::from_file(config_path)?;
    if layers.start > layers.end || layers.end > config.num_hidden_layers {
        bail!(
            "layers {layers:?} are outside the {} layers of {}",
            config.num_hidden_layers,
            config_path.display()
        );
    }
    let checkpoint = open_weights(weights_path, device)?;
    let root = find_prefix(
        &checkpoint,
        &["", "bert", "roberta"],
        "embeddings.word_embeddings.weight",
        weights_path,
    )?;
    let checkpoint = if root.is_empty() { checkpoint } else { checkpoint.pp(root) };
    let vb = VarBuilder::from_varmap(varmap, DType::F32, device);
    let mut built = Vec::with_capacity(layers.len());
    for (i, index) in layers.enumerate() {
        let name = format!("{prefix}.{i}");
        // The variables are created with throwaway values, then overwritten in place (the
        // layer's tensors share their storage) by the checkpoint's.
        let layer = BertLayer::load(vb.pp(&name), &config)?;
        let source = checkpoint.pp(format!("encoder.layer.{index}"));
        let vars = varmap.data().lock().expect("VarMap lock poisoned");
        let mut copied = 0;
        for (var_name, var) in vars.iter() {
            let Some(rest) = var_name.strip_prefix(&format!("{name}.")) else { continue };
            let weights = checkpoint_tensor(&source, rest, var.shape())
                .with_context(|| format!("{}: layer {index}", weights_path.display()))?;
            var.set(&weights)?;
            copied += 1;
        }
        if copied == 0 {
            bail!("no variables were created for layer {index} under `{name}`");
        }
        built.push(layer);
    }
    Ok((config, built))
}

/// The checkpoint tensor `name` (relative to one layer), accepting the `gamma`/`beta` layer
/// norm names of TF-converted checkpoints for `weight`/`bias`.
fn checkpoint_tensor(layer: &VarBuilder, name: &str, shape: &candle_core::Shape) -> Result<Tensor> {
    if layer.contains_tensor(name) {
        return Ok(layer.get(shape, name)?);
    }
    let legacy = name
        .strip_suffix("LayerNorm.weight")
        .map(|stem| format!("{stem}LayerNorm.gamma"))
        .or_else(|| name.strip_suffix("LayerNorm.bias").map(|s| format!("{s}LayerNorm.beta")));
    match legacy {
        Some(legacy) if layer.contains_tensor(&legacy) => Ok(layer.get(shape, &legacy)?),
        _ => bail!("the checkpoint has no tensor `{name}`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_nn::{VarBuilder, VarMap};

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
        assert_eq!(config.family().unwrap(), Family::Bert);
        assert_eq!(tiny_config("roberta").family().unwrap(), Family::Roberta);
        assert_eq!(tiny_config("roberta").max_input_length(), 22);
        let err = tiny_config("distilbert").validate().unwrap_err().to_string();
        assert!(err.contains("distilbert"), "{err}");
        let act: Activation = serde_json::from_str("\"gelu_new\"").unwrap();
        assert_eq!(act, Activation::GeluNew);
    }

    /// Every variable of the top layer must receive a gradient in trainable mode; in
    /// inference mode the fused layer norms cut the graph, which this also checks so that
    /// the test would notice if the switch stopped switching.
    #[test]
    fn trainable_mode_gives_every_top_layer_variable_a_gradient() -> Result<()> {
        let device = Device::Cpu;
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &device);
        let mut model = BertModel::new(vb, &tiny_config("bert"))?;
        let ids = Tensor::new(&[[2u32, 5, 6, 7, 3], [2, 8, 3, 0, 0]], &device)?;
        let mask = Tensor::new(&[[1u32, 1, 1, 1, 1], [1, 1, 1, 0, 0]], &device)?;
        // Hidden state 1 stands in for cached activations below the fine-tuned layer.
        let below = model.forward_layers(&model.embed(&ids, None)?, &mask, 0..1)?[0].detach();
        // A fixed random projection: a plain sum of layer-normed outputs has zero gradient.
        let target = Tensor::randn(0f32, 1.0, (2, 5, 16), &device)?;
        let top_vars: Vec<(String, candle_core::Var)> = varmap
            .data()
            .lock()
            .unwrap()
            .iter()
            .filter(|(name, _)| name.starts_with("encoder.layer.1."))
            .map(|(name, var)| (name.clone(), var.clone()))
            .collect();
        assert_eq!(top_vars.len(), 16, "the top layer has 8 weight/bias pairs");

        let grad_norms = |model: &BertModel| -> Result<Vec<(String, f32)>> {
            let top = model.forward_layers(&below, &mask, 1..2)?.remove(0);
            let grads = (top * &target)?.sum_all()?.backward()?;
            top_vars
                .iter()
                .map(|(name, var)| {
                    let norm = match grads.get(var.as_tensor()) {
                        Some(grad) => grad.abs()?.sum_all()?.to_scalar::<f32>()?,
                        None => 0.0,
                    };
                    Ok((name.clone(), norm))
                })
                .collect()
        };

        model.set_mode(Mode::Trainable);
        for (name, norm) in grad_norms(&model)? {
            assert!(norm > 0.0, "{name} got no gradient in trainable mode");
        }
        model.set_mode(Mode::Inference);
        let cut = grad_norms(&model)?.into_iter().filter(|(_, norm)| *norm == 0.0).count();
        assert!(cut > 0, "fused inference ops unexpectedly propagated every gradient");
        Ok(())
    }
}
