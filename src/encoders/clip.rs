//! The CLIP ViT vision tower, exposing every hidden layer.
//!
//! Reads checkpoints in the `openai/clip-vit-base-patch32` layout (a full `CLIPModel` or a
//! `CLIPVisionModel`: tensors under `vision_model.`), following Hugging Face's
//! `modeling_clip.py`. Hidden state 0 is the embeddings after `pre_layrnorm`, hidden state
//! `i` the output of layer `i`, as in `output_hidden_states`.

use std::ops::Range;
use std::path::Path;

use anyhow::{bail, Context, Result};
use candle_core::{Device, Module, Tensor};
use candle_nn::{Embedding, Init, VarBuilder};
use serde::Deserialize;

use super::ops::{self, Activation, LayerNorm, Linear, Mode};
use super::transformer_layer::LayerShape;
use super::weights::{find_prefix, open_weights};

/// A `CLIPVisionConfig`; missing fields take Hugging Face's defaults (ViT-B/32), as
/// `transformers` does for the sparse `vision_config` of older CLIP configs.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ClipVisionConfig {
    #[serde(default = "defaults::hidden_size")]
    pub hidden_size: usize,
    #[serde(default = "defaults::intermediate_size")]
    pub intermediate_size: usize,
    #[serde(default = "defaults::layers")]
    pub num_hidden_layers: usize,
    #[serde(default = "defaults::heads")]
    pub num_attention_heads: usize,
    #[serde(default = "defaults::channels")]
    pub num_channels: usize,
    #[serde(default = "defaults::image_size")]
    pub image_size: usize,
    #[serde(default = "defaults::patch_size")]
    pub patch_size: usize,
    #[serde(default = "defaults::act")]
    pub hidden_act: Activation,
    #[serde(default = "defaults::eps")]
    pub layer_norm_eps: f64,
}

mod defaults {
    use super::Activation;
    pub fn hidden_size() -> usize {
        768
    }
    pub fn intermediate_size() -> usize {
        3072
    }
    pub fn layers() -> usize {
        12
    }
    pub fn heads() -> usize {
        12
    }
    pub fn channels() -> usize {
        3
    }
    pub fn image_size() -> usize {
        224
    }
    pub fn patch_size() -> usize {
        32
    }
    pub fn act() -> Activation {
        Activation::QuickGelu
    }
    pub fn eps() -> f64 {
        1e-5
    }
}

impl ClipVisionConfig {
    /// Reads a `CLIPConfig` (uses its `vision_config`) or a plain `CLIPVisionConfig`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::from_json(&text).with_context(|| format!("in {}", path.display()))
    }

    pub fn from_json(text: &str) -> Result<Self> {
        let value: serde_json::Value = serde_json::from_str(text).context("invalid JSON")?;
        let model_type = value.get("model_type").and_then(|t| t.as_str());
        let vision = match (value.get("vision_config"), model_type) {
            (Some(vision), _) => vision.clone(),
            (None, None | Some("clip_vision_model")) => value,
            (None, Some(other)) => {
                bail!("model_type `{other}` is not a CLIP model (no vision_config)")
            }
        };
        let config: ClipVisionConfig =
            serde_json::from_value(vision).context("not a CLIP vision config")?;
        LayerShape::check_heads(config.hidden_size, config.num_attention_heads)?;
        if config.patch_size == 0 || !config.image_size.is_multiple_of(config.patch_size) {
            bail!(
                "image_size {} is not a multiple of patch_size {}",
                config.image_size,
                config.patch_size
            );
        }
        Ok(config)
    }

    /// Patches along one side of the image.
    pub fn grid(&self) -> usize {
        self.image_size / self.patch_size
    }
}

struct Embeddings {
    /// The patch convolution as a `(hidden, channels * patch * patch)` matrix: with stride
    /// equal to the kernel, the convolution is one matrix product over flattened patches.
    patch: Tensor,
    class: Tensor,
    positions: Embedding,
    channels: usize,
    patch_size: usize,
}

impl Embeddings {
    fn load(vb: VarBuilder, c: &ClipVisionConfig) -> Result<Self> {
        let (hidden, p) = (c.hidden_size, c.patch_size);
        let init = Init::Randn { mean: 0.0, stdev: 0.02 };
        let patch =
            vb.get_with_hints((hidden, c.num_channels, p, p), "patch_embedding.weight", init)?;
        let class = vb.get_with_hints(hidden, "class_embedding", init)?;
        let positions =
            candle_nn::embedding(c.grid() * c.grid() + 1, hidden, vb.pp("position_embedding"))?;
        Ok(Self {
            patch: patch.reshape((hidden, c.num_channels * p * p))?,
            class,
            positions,
            channels: c.num_channels,
            patch_size: p,
        })
    }

    /// `(batch, channels, size, size)` pixels to `(batch, 1 + patches, hidden)` tokens.
    fn forward(&self, pixels: &Tensor) -> Result<Tensor> {
        let (batch, channels, height, width) = pixels.dims4()?;
        let p = self.patch_size;
        if channels != self.channels || height % p != 0 || width % p != 0 {
            bail!(
                "pixels of shape {:?} do not fit {} channels in patches of {p}",
                pixels.dims(),
                self.channels
            );
        }
        let (rows, cols) = (height / p, width / p);
        // (b, c, rows, p, cols, p) -> (b, rows, cols, c, p, p): each patch flattened in the
        // (channel, y, x) order of the convolution weight.
        let patches = pixels
            .reshape((batch, channels, rows, p, cols, p))?
            .permute((0, 2, 4, 1, 3, 5))?
            .contiguous()?
            .reshape((batch * rows * cols, channels * p * p))?;
        let hidden = self.patch.dim(0)?;
        let tokens = patches.matmul(&self.patch.t()?)?.reshape((batch, rows * cols, hidden))?;
        let class = self.class.reshape((1, 1, hidden))?.broadcast_as((batch, 1, hidden))?;
        let tokens = Tensor::cat(&[&class.contiguous()?, &tokens], 1)?;
        Ok(tokens.broadcast_add(self.positions.embeddings())?)
    }
}

/// One pre-norm transformer block.
pub struct ClipLayer {
    norm1: LayerNorm,
    query: Linear,
    key: Linear,
    value: Linear,
    out: Linear,
    norm2: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    activation: Activation,
    heads: usize,
}

impl ClipLayer {
    fn load(vb: VarBuilder, c: &ClipVisionConfig) -> Result<Self> {
        let (hidden, eps) = (c.hidden_size, c.layer_norm_eps);
        let attn = vb.pp("self_attn");
        Ok(Self {
            norm1: LayerNorm::load(hidden, eps, vb.pp("layer_norm1"))?,
            query: Linear::load(hidden, hidden, attn.pp("q_proj"))?,
            key: Linear::load(hidden, hidden, attn.pp("k_proj"))?,
            value: Linear::load(hidden, hidden, attn.pp("v_proj"))?,
            out: Linear::load(hidden, hidden, attn.pp("out_proj"))?,
            norm2: LayerNorm::load(hidden, eps, vb.pp("layer_norm2"))?,
            fc1: Linear::load(hidden, c.intermediate_size, vb.pp("mlp.fc1"))?,
            fc2: Linear::load(c.intermediate_size, hidden, vb.pp("mlp.fc2"))?,
            activation: c.hidden_act,
            heads: c.num_attention_heads,
        })
    }

    pub fn forward(&self, xs: &Tensor, mode: Mode) -> Result<Tensor> {
        let normed = self.norm1.forward(xs, mode)?;
        let query = ops::split_heads(&self.query.forward(&normed)?, self.heads)?;
        let key = ops::split_heads(&self.key.forward(&normed)?, self.heads)?;
        let value = ops::split_heads(&self.value.forward(&normed)?, self.heads)?;
        let attended = ops::merge_heads(&ops::attention(&query, &key, &value, None, mode)?)?;
        let xs = (xs + self.out.forward(&attended)?)?;
        let normed = self.norm2.forward(&xs, mode)?;
        let inner = self.activation.forward(&self.fc1.forward(&normed)?, mode)?;
        Ok((xs + self.fc2.forward(&inner)?)?)
    }
}

/// The CLIP vision transformer (no projection head).
pub struct ClipVisionModel {
    config: ClipVisionConfig,
    embeddings: Embeddings,
    pre_norm: LayerNorm,
    layers: Vec<ClipLayer>,
    post_norm: LayerNorm,
    mode: Mode,
}

impl ClipVisionModel {
    /// Builds the tower from tensors under `vb` (`embeddings.*`, `pre_layrnorm`,
    /// `encoder.layers.*`, `post_layernorm`).
    pub fn new(vb: VarBuilder, config: &ClipVisionConfig) -> Result<Self> {
        let eps = config.layer_norm_eps;
        let hidden = config.hidden_size;
        let layers = (0..config.num_hidden_layers)
            .map(|i| ClipLayer::load(vb.pp(format!("encoder.layers.{i}")), config))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            config: config.clone(),
            embeddings: Embeddings::load(vb.pp("embeddings"), config)?,
            pre_norm: LayerNorm::load(hidden, eps, vb.pp("pre_layrnorm"))?,
            layers,
            post_norm: LayerNorm::load(hidden, eps, vb.pp("post_layernorm"))?,
            mode: Mode::Inference,
        })
    }

    /// Loads `config.json` and the weights (`vision_model.` prefix, or none).
    pub fn from_files(config_path: &Path, weights_path: &Path, device: &Device) -> Result<Self> {
        let config = ClipVisionConfig::from_file(config_path)?;
        let vb = open_weights(weights_path, device)?;
        let prefix =
            find_prefix(&vb, &["vision_model", ""], "embeddings.class_embedding", weights_path)?;
        let vb = if prefix.is_empty() { vb } else { vb.pp(prefix) };
        ClipVisionModel::new(vb, &config).with_context(|| {
            format!("loading the CLIP vision tower from {}", weights_path.display())
        })
    }

    pub fn config(&self) -> &ClipVisionConfig {
        &self.config
    }

    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    pub fn set_mode(&mut self, mode: Mode) {
        self.mode = mode;
    }

    /// Hidden state 0: patch + class embeddings with positions, after `pre_layrnorm`.
    pub fn embed(&self, pixels: &Tensor) -> Result<Tensor> {
        self.pre_norm.forward(&self.embeddings.forward(pixels)?, self.mode).map_err(Into::into)
    }

    /// Runs layers `layers` on hidden state `layers.start`; returns each layer's output.
    pub fn forward_layers(&self, hidden: &Tensor, layers: Range<usize>) -> Result<Vec<Tensor>> {
        if layers.start > layers.end || layers.end > self.layers.len() {
            bail!("layer range {layers:?} is outside the model's {} layers", self.layers.len());
        }
        let mut outputs = Vec::with_capacity(layers.len());
        let mut current = hidden.clone();
        for layer in &self.layers[layers] {
            current = layer.forward(&current, self.mode)?;
            outputs.push(current.clone());
        }
        Ok(outputs)
    }

    /// Every hidden state `(batch, 1 + patches, hidden)`: embeddings, then each layer.
    pub fn hidden_states(&self, pixels: &Tensor) -> Result<Vec<Tensor>> {
        let embedded = self.embed(pixels)?;
        let mut states = vec![embedded.clone()];
        states.extend(self.forward_layers(&embedded, 0..self.layers.len())?);
        Ok(states)
    }

    /// CLIP's pooled output: `post_layernorm` of the last hidden state's [CLS] token.
    pub fn pooled(&self, last_hidden: &Tensor) -> Result<Tensor> {
        let cls = last_hidden.narrow(1, 0, 1)?.squeeze(1)?;
        self.post_norm.forward(&cls, self.mode).map_err(Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_nested_and_plain_configs_with_hf_defaults() -> Result<()> {
        let nested = ClipVisionConfig::from_json(
            r#"{"model_type": "clip", "vision_config": {"patch_size": 16}, "text_config": {}}"#,
        )?;
        assert_eq!((nested.hidden_size, nested.patch_size, nested.grid()), (768, 16, 14));
        assert_eq!(nested.hidden_act, Activation::QuickGelu);
        let plain = ClipVisionConfig::from_json(
            r#"{"model_type": "clip_vision_model", "hidden_size": 32, "image_size": 32,
                "patch_size": 8, "num_attention_heads": 4, "hidden_act": "gelu"}"#,
        )?;
        assert_eq!((plain.hidden_size, plain.grid(), plain.hidden_act), (32, 4, Activation::Gelu));
        let err = ClipVisionConfig::from_json(r#"{"model_type": "bert"}"#).unwrap_err();
        assert!(format!("{err:#}").contains("not a CLIP model"), "{err:#}");
        let err = ClipVisionConfig::from_json(r#"{"image_size": 30, "patch_size": 8}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("patch_size"), "{err}");
        Ok(())
    }

    /// The patch embedding written as a matrix product must equal the strided convolution.
    #[test]
    fn patch_embedding_matches_a_strided_convolution() -> Result<()> {
        let device = Device::Cpu;
        let (hidden, p) = (6, 4);
        let weight = Tensor::randn(0f32, 1.0, (hidden, 3, p, p), &device)?;
        let embeddings = Embeddings {
            patch: weight.reshape((hidden, 3 * p * p))?,
            class: Tensor::zeros(hidden, candle_core::DType::F32, &device)?,
            positions: Embedding::new(
                Tensor::zeros((10, hidden), candle_core::DType::F32, &device)?,
                hidden,
            ),
            channels: 3,
            patch_size: p,
        };
        let pixels = Tensor::randn(0f32, 1.0, (2, 3, 12, 12), &device)?;
        let ours = embeddings.forward(&pixels)?.narrow(1, 1, 9)?;
        let conv = pixels.conv2d(&weight, 0, p, 1, 1)?.flatten_from(2)?.transpose(1, 2)?;
        let diff = (ours - conv)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(diff < 1e-4, "patch embedding differs from the convolution by {diff}");
        Ok(())
    }
}
