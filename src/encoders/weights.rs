//! Opening checkpoint weights and finding where a model's tensors live inside them.

use std::path::Path;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device};
use candle_nn::VarBuilder;

/// Opens `model.safetensors` (memory-mapped) or a PyTorch `pytorch_model.bin` as f32.
pub fn open_weights(path: &Path, device: &Device) -> Result<VarBuilder<'static>> {
    let is_safetensors = path.extension().is_some_and(|ext| ext == "safetensors");
    let vb = if is_safetensors {
        // SAFETY: the file is mapped read-only; like every mmap user we rely on nobody
        // truncating the checkpoint while the model is loaded.
        unsafe { VarBuilder::from_mmaped_safetensors(&[path], DType::F32, device) }
    } else {
        VarBuilder::from_pth(path, DType::F32, device)
    };
    vb.with_context(|| format!("reading weights {}", path.display()))
}

/// The first of `prefixes` under which `probe` (a tensor every checkpoint of the family has)
/// exists; `""` means the tensors sit at the root. Checkpoints saved from a task head
/// (`BertForSequenceClassification`, `CLIPModel`) nest the encoder under a prefix.
pub fn find_prefix<'a>(
    vb: &VarBuilder,
    prefixes: &[&'a str],
    probe: &str,
    weights: &Path,
) -> Result<&'a str> {
    for prefix in prefixes {
        let name = if prefix.is_empty() { probe.to_string() } else { format!("{prefix}.{probe}") };
        if vb.contains_tensor(&name) {
            return Ok(prefix);
        }
    }
    let tried: Vec<String> = prefixes
        .iter()
        .map(|p| if p.is_empty() { probe.to_string() } else { format!("{p}.{probe}") })
        .collect();
    bail!(
        "{} does not look like the expected checkpoint: none of the tensors {} is in it",
        weights.display(),
        tried.join(", ")
    )
}
