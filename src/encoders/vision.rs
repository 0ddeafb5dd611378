//! The frozen CLIP ViT image encoder.
//!
//! [`VisionEncoder::encode`] returns the [CLS] token of each of the top hidden states as
//! they leave the transformer layers, *without* CLIP's `post_layernorm`: that norm was
//! trained for the last layer's [CLS] only (it feeds the projection head), so applying it
//! to lower layers would rescale them with statistics meant for another layer, and applying
//! it to the top layer alone would make the top layer unlike the others. The vectors are
//! thus Hugging Face's `hidden_states[i][:, 0]`; [`ClipVisionModel::pooled`] gives CLIP's
//! pooled output for whoever wants it.

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use image::DynamicImage;

use super::clip::ClipVisionModel;
use super::preprocess::preprocess_batch;
use super::{ModelFiles, ProgressFn};

pub struct VisionEncoder {
    model: ClipVisionModel,
    layers: usize,
    batch_size: usize,
    device: Device,
}

impl VisionEncoder {
    /// `layers`: how many top hidden states to expose (hidden state 0 being the embeddings,
    /// so up to `num_hidden_layers + 1`).
    pub fn load(
        files: &ModelFiles,
        device: &Device,
        layers: usize,
        batch_size: usize,
    ) -> Result<Self> {
        let model = ClipVisionModel::from_files(&files.config, &files.weights, device)?;
        let states = model.num_layers() + 1;
        if layers == 0 || layers > states {
            bail!(
                "vision_encoder.layers = {layers} is outside 1..={states} (`{}` has {} layers \
                 plus the embedding output)",
                files.spec,
                model.num_layers()
            );
        }
        if batch_size == 0 {
            bail!("vision_encoder.batch_size must be at least 1");
        }
        Ok(Self { model, layers, batch_size, device: device.clone() })
    }

    pub fn hidden_size(&self) -> usize {
        self.model.config().hidden_size
    }

    /// The side of the square input images, in pixels.
    pub fn image_size(&self) -> usize {
        self.model.config().image_size
    }

    /// The underlying tower, e.g. for its pooled output or to fine-tune top layers.
    pub fn model(&self) -> &ClipVisionModel {
        &self.model
    }

    /// Encodes images into a `(images, layers, hidden)` f32 tensor of [CLS] vectors on the CPU.
    pub fn encode(&self, images: &[DynamicImage], progress: ProgressFn) -> Result<Tensor> {
        let layers = self.layers;
        self.run(images, progress, layers, |states| {
            let top = &states[states.len() - layers..];
            let cls =
                top.iter().map(|s| s.narrow(1, 0, 1)).collect::<candle_core::Result<Vec<_>>>()?;
            Ok(Tensor::cat(&cls, 1)?)
        })
    }

    /// The patch tokens of the last layer: `(images, patches, hidden)` f32 on the CPU, patches
    /// in row-major order over the `image_size / patch_size` grid.
    pub fn encode_patches(&self, images: &[DynamicImage], progress: ProgressFn) -> Result<Tensor> {
        let grid = self.model.config().grid();
        self.run(images, progress, grid * grid, |states| {
            let last = states.last().context("the model has no hidden states")?;
            Ok(last.narrow(1, 1, grid * grid)?)
        })
    }

    /// Preprocesses and encodes images in batches; `select` turns one batch's hidden states
    /// into `(batch, rows, hidden)`.
    fn run(
        &self,
        images: &[DynamicImage],
        progress: ProgressFn,
        rows: usize,
        select: impl Fn(&[Tensor]) -> Result<Tensor>,
    ) -> Result<Tensor> {
        let hidden = self.hidden_size();
        let size = self.image_size() as u32;
        let mut out = Vec::with_capacity(images.len() * rows * hidden);
        progress(0, images.len());
        for (index, chunk) in images.chunks(self.batch_size).enumerate() {
            let start = index * self.batch_size;
            let refs: Vec<&DynamicImage> = chunk.iter().collect();
            let pixels = preprocess_batch(&refs, size, &self.device)?;
            let states = self
                .model
                .hidden_states(&pixels)
                .with_context(|| format!("encoding images {start}..{}", start + chunk.len()))?;
            let selected = select(&states)?.to_dtype(DType::F32)?.to_device(&Device::Cpu)?;
            out.extend(selected.flatten_all()?.to_vec1::<f32>()?);
            progress(start + chunk.len(), images.len());
        }
        Ok(Tensor::from_vec(out, (images.len(), rows, hidden), &Device::Cpu)?)
    }
}
