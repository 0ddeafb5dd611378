//! The seam between the text encoder and the architectures ("families") it can run.
//!
//! A family is one file that parses its `config.json` into a [`TextConfig`], which builds
//! the family's [`Embeddings`] and [`LayerStack`], plus one line in [`FAMILIES`]. Everything
//! else — loading a checkpoint wherever it nests the encoder, the frozen forward pass with
//! every hidden state, the fine-tuned top layers as trainable variables initialised from the
//! checkpoint, tiny random checkpoints for tests — is written once here, against those
//! traits, and picks the family from `config.json`'s `model_type`.

use std::ops::Range;
use std::path::Path;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::{VarBuilder, VarMap};
use serde::Deserialize;

use super::ops::Mode;
use super::weights::{find_prefix, open_weights};
use super::{bert, mpnet};

/// Every text encoder family, tried in order against `config.json`'s `model_type`.
pub static FAMILIES: &[TextFamily] = &[bert::FAMILY, mpnet::FAMILY];

/// One architecture's entry in [`FAMILIES`].
#[derive(Debug)]
pub struct TextFamily {
    /// The `model_type` values of `config.json` this family runs.
    pub model_types: &'static [&'static str],
    /// Where checkpoints saved from a task head nest the encoder (`""`: at the root).
    pub checkpoint_prefixes: &'static [&'static str],
    /// Parses and validates the text of `config.json`.
    pub parse: fn(&str) -> Result<Box<dyn TextConfig>>,
}

/// A family's parsed `config.json`: the sizes callers need, and builders for its parts.
pub trait TextConfig: Send + Sync {
    fn hidden_size(&self) -> usize;
    fn num_layers(&self) -> usize;
    /// The longest input, special tokens included, that the position table holds.
    fn max_input_length(&self) -> usize;
    /// The token id that pads a batch.
    fn pad_token_id(&self) -> u32;
    /// The embedding layer, from the tensors under `vb` (the checkpoint's `embeddings.`).
    fn embeddings(&self, vb: VarBuilder) -> candle_core::Result<Box<dyn Embeddings>>;
    /// The transformer layers, each from its own builder (bottom first), with whatever the
    /// layers share (e.g. MPNet's relative position bias) under `shared`, named as in the
    /// checkpoint's `encoder.`.
    fn layer_stack(
        &self,
        shared: VarBuilder,
        layers: Vec<VarBuilder>,
    ) -> candle_core::Result<Box<dyn LayerStack>>;
}

/// Token ids to hidden state 0.
pub trait Embeddings: Send + Sync {
    /// `(batch, seq)` u32 ids to `(batch, seq, hidden)`; `type_ids` defaults to zeros and
    /// families with a single type ignore it.
    fn forward(
        &self,
        input_ids: &Tensor,
        type_ids: Option<&Tensor>,
        mode: Mode,
    ) -> candle_core::Result<Tensor>;
}

/// A run of transformer layers.
pub trait LayerStack: Send + Sync {
    fn len(&self) -> usize;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Runs the layers `layers` (0-based within the stack; layer `i` turns hidden state `i`
    /// into `i + 1`) on `hidden`, hidden state `layers.start`, with the `(batch, seq)` 0/1
    /// padding mask. Returns each layer's output, i.e. hidden states `layers.start + 1 ..=
    /// layers.end`. Anything the layers share (padding bias, position bias) is computed
    /// once per call.
    fn forward(
        &self,
        hidden: &Tensor,
        attention_mask: &Tensor,
        layers: Range<usize>,
        mode: Mode,
    ) -> candle_core::Result<Vec<Tensor>>;
}

/// Reads `config.json` with the family its `model_type` names (absent means BERT, as in
/// old configs).
pub fn read_config(path: &Path) -> Result<Box<dyn TextConfig>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse_config(&text).with_context(|| format!("in {}", path.display()))
}

/// Parses the text of a `config.json` with the family its `model_type` names.
pub fn parse_config(text: &str) -> Result<Box<dyn TextConfig>> {
    let (family, _) = family_of(text)?;
    (family.parse)(text)
}

/// The family of the `config.json` text, and its `model_type`.
fn family_of(config: &str) -> Result<(&'static TextFamily, String)> {
    #[derive(Deserialize)]
    struct Header {
        #[serde(default)]
        model_type: Option<String>,
    }
    let header: Header = serde_json::from_str(config).context("not a JSON object")?;
    let model_type = header.model_type.unwrap_or_else(|| "bert".to_string());
    match FAMILIES.iter().find(|f| f.model_types.contains(&model_type.as_str())) {
        Some(family) => Ok((family, model_type)),
        None => {
            let known: Vec<&str> = FAMILIES.iter().flat_map(|f| f.model_types).copied().collect();
            bail!(
                "model_type `{model_type}` is not supported by the text encoder (supported: {})",
                known.join(", ")
            )
        }
    }
}

/// A whole text encoder: embeddings and every layer (no pooler, no task head).
pub struct TextModel {
    config: Box<dyn TextConfig>,
    embeddings: Box<dyn Embeddings>,
    layers: Box<dyn LayerStack>,
    mode: Mode,
}

impl TextModel {
    /// Builds the model from tensors at the root of `vb` (`embeddings.*`, `encoder.*`).
    /// With a `VarMap`-backed builder this creates freshly initialised variables.
    pub fn new(vb: VarBuilder, config: Box<dyn TextConfig>) -> candle_core::Result<Self> {
        let embeddings = config.embeddings(vb.pp("embeddings"))?;
        let encoder = vb.pp("encoder");
        let layers = (0..config.num_layers()).map(|i| encoder.pp(format!("layer.{i}"))).collect();
        let layers = config.layer_stack(encoder, layers)?;
        Ok(Self { config, embeddings, layers, mode: Mode::Inference })
    }

    /// Loads `config.json` and the weights, wherever the checkpoint nests the encoder.
    pub fn from_files(config_path: &Path, weights_path: &Path, device: &Device) -> Result<Self> {
        let config = read_config(config_path)?;
        let vb = open_weights(weights_path, device)?;
        let vb = encoder_root(vb, config_path, weights_path)?;
        TextModel::new(vb, config)
            .with_context(|| format!("loading the encoder from {}", weights_path.display()))
    }

    pub fn config(&self) -> &dyn TextConfig {
        self.config.as_ref()
    }

    pub fn hidden_size(&self) -> usize {
        self.config.hidden_size()
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
    pub fn embed(&self, input_ids: &Tensor, type_ids: Option<&Tensor>) -> Result<Tensor> {
        Ok(self.embeddings.forward(input_ids, type_ids, self.mode)?)
    }

    /// [`LayerStack::forward`] of this model's layers.
    pub fn forward_layers(
        &self,
        hidden: &Tensor,
        attention_mask: &Tensor,
        layers: Range<usize>,
    ) -> Result<Vec<Tensor>> {
        if layers.start > layers.end || layers.end > self.layers.len() {
            bail!("layer range {layers:?} is outside the model's {} layers", self.layers.len());
        }
        Ok(self.layers.forward(hidden, attention_mask, layers, self.mode)?)
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

/// `vb` moved to where the checkpoint keeps `embeddings.` and `encoder.`.
fn encoder_root(
    vb: VarBuilder<'static>,
    config_path: &Path,
    weights_path: &Path,
) -> Result<VarBuilder<'static>> {
    let text = std::fs::read_to_string(config_path)
        .with_context(|| format!("reading {}", config_path.display()))?;
    let (family, _) = family_of(&text)?;
    let prefix = find_prefix(
        &vb,
        family.checkpoint_prefixes,
        "embeddings.word_embeddings.weight",
        weights_path,
    )?;
    Ok(if prefix.is_empty() { vb } else { vb.pp(prefix) })
}

/// Layers `layers` of a checkpoint as trainable variables of `varmap`, holding the
/// checkpoint's weights: layer `first + i` as `{prefix}.{i}.…` (the rest of each name as in
/// the checkpoint, e.g. `attention.self.query.weight`), and what the layers share as
/// `{prefix}.…` (e.g. `relative_attention_bias.weight`, from `encoder.…`). Saving `varmap`
/// thus saves the fine-tuned layers; loading a saved `varmap` over them restores them.
/// Returns the checkpoint's config with the layers.
pub fn pretrained_layers(
    config_path: &Path,
    weights_path: &Path,
    layers: Range<usize>,
    varmap: &VarMap,
    prefix: &str,
    device: &Device,
) -> Result<(Box<dyn TextConfig>, Box<dyn LayerStack>)> {
    let config = read_config(config_path)?;
    if layers.start > layers.end || layers.end > config.num_layers() {
        bail!(
            "layers {layers:?} are outside the {} layers of {}",
            config.num_layers(),
            config_path.display()
        );
    }
    let checkpoint = open_weights(weights_path, device)?;
    let encoder = encoder_root(checkpoint, config_path, weights_path)?.pp("encoder");
    // The variables are created with throwaway values, then overwritten in place (the
    // layers' tensors share their storage) by the checkpoint's.
    let vb = VarBuilder::from_varmap(varmap, DType::F32, device).pp(prefix);
    let per_layer = (0..layers.len()).map(|i| vb.pp(i.to_string())).collect();
    let stack = config.layer_stack(vb, per_layer)?;
    let vars = varmap.data().lock().expect("VarMap lock poisoned");
    let mut copied = 0;
    for (var_name, var) in vars.iter() {
        let Some(rest) = var_name.strip_prefix(&format!("{prefix}.")) else { continue };
        let source = checkpoint_name(rest, layers.start);
        let weights = checkpoint_tensor(&encoder, &source, var.shape())
            .with_context(|| format!("{}: `{var_name}`", weights_path.display()))?;
        var.set(&weights)?;
        copied += 1;
    }
    if copied == 0 {
        bail!("no variables were created for layers {layers:?} under `{prefix}`");
    }
    Ok((config, stack))
}

/// The checkpoint name, under `encoder.`, of the top-stack variable `rest`: `{i}.x` is layer
/// `first + i`'s `x`, anything else is shared by the layers.
fn checkpoint_name(rest: &str, first: usize) -> String {
    let index =
        rest.split_once('.').and_then(|(head, tail)| Some((head.parse::<usize>().ok()?, tail)));
    match index {
        Some((i, tail)) => format!("layer.{}.{tail}", first + i),
        None => rest.to_string(),
    }
}

/// The checkpoint tensor `name`, accepting the `gamma`/`beta` layer norm names of
/// TF-converted checkpoints for `weight`/`bias`.
fn checkpoint_tensor(vb: &VarBuilder, name: &str, shape: &Shape) -> Result<Tensor> {
    if vb.contains_tensor(name) {
        return Ok(vb.get(shape, name)?);
    }
    let legacy = name
        .strip_suffix("LayerNorm.weight")
        .map(|stem| format!("{stem}LayerNorm.gamma"))
        .or_else(|| name.strip_suffix("LayerNorm.bias").map(|s| format!("{s}LayerNorm.beta")));
    match legacy {
        Some(legacy) if vb.contains_tensor(&legacy) => Ok(vb.get(shape, &legacy)?),
        _ => bail!("the checkpoint has no tensor `encoder.{name}`"),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Every variable of a two-layer model's top layer (and whatever the layers share) must
    /// receive a gradient in trainable mode; in inference mode the fused layer norms cut the
    /// graph, which this also checks so that it would notice if the switch stopped switching.
    pub(crate) fn check_top_layer_gradients(
        config: Box<dyn TextConfig>,
        expected_vars: usize,
    ) -> Result<()> {
        assert_eq!(config.num_layers(), 2);
        let (device, hidden, pad) = (Device::Cpu, config.hidden_size(), config.pad_token_id());
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &device);
        let mut model = TextModel::new(vb, config)?;
        let ids = Tensor::new(&[[0u32, 5, 6, 7, 2], [0, 8, 2, pad, pad]], &device)?;
        let mask = Tensor::new(&[[1u32, 1, 1, 1, 1], [1, 1, 1, 0, 0]], &device)?;
        // Hidden state 1 stands in for cached activations below the fine-tuned layer.
        let below = model.forward_layers(&model.embed(&ids, None)?, &mask, 0..1)?[0].detach();
        // A fixed random projection: a plain sum of layer-normed outputs has zero gradient.
        let target = Tensor::randn(0f32, 1.0, (2, 5, hidden), &device)?;
        let top_vars: Vec<(String, candle_core::Var)> = varmap
            .data()
            .lock()
            .unwrap()
            .iter()
            .filter(|(name, _)| {
                name.starts_with("encoder.") && !name.starts_with("encoder.layer.0.")
            })
            .map(|(name, var)| (name.clone(), var.clone()))
            .collect();
        assert_eq!(
            top_vars.len(),
            expected_vars,
            "{:?}",
            top_vars.iter().map(|v| &v.0).collect::<Vec<_>>()
        );

        let grad_norms = |model: &TextModel| -> Result<Vec<(String, f32)>> {
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

    #[test]
    fn top_stack_names_map_to_the_checkpoints_layers() {
        assert_eq!(
            checkpoint_name("0.attention.self.query.weight", 4),
            "layer.4.attention.self.query.weight"
        );
        assert_eq!(checkpoint_name("1.output.dense.bias", 4), "layer.5.output.dense.bias");
        assert_eq!(
            checkpoint_name("relative_attention_bias.weight", 4),
            "relative_attention_bias.weight"
        );
    }

    #[test]
    fn unknown_model_types_list_the_supported_ones() {
        let err = family_of(r#"{"model_type": "distilbert"}"#).unwrap_err().to_string();
        assert!(err.contains("distilbert") && err.contains("mpnet") && err.contains("roberta"));
        assert_eq!(family_of("{}").unwrap().1, "bert");
        assert_eq!(family_of(r#"{"model_type": "mpnet"}"#).unwrap().1, "mpnet");
    }
}
