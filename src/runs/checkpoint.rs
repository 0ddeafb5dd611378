//! Checkpoints (`last.safetensors`, `best.safetensors`): the model's weights by variable
//! name, and in the header the training state they belong to, so that weights and progress
//! can never disagree. The last checkpoint also holds the optimizer's moments and step
//! count, so that a resume continues exactly where the run stopped. A digest of the tensor
//! bytes makes a corrupt or truncated file an error that names it.
//!
//! Any safetensors reader still loads the weights: the optimizer's tensors sit under their
//! own names (`optimizer/first/<var>`, `optimizer/second/<var>`), which no model variable
//! has.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::{bail, Context, Result};
use candle_core::safetensors::Load;
use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use safetensors::{SafeTensors, View};
use sha2::{Digest, Sha256};

use super::report::TrainState;
use crate::atomic_file::write_atomic;

const STATE_KEY: &str = "memescope.state";
const OPTIMIZER_STEP_KEY: &str = "memescope.optimizer_step";
const DIGEST_KEY: &str = "memescope.sha256";
const FIRST: &str = "optimizer/first/";
const SECOND: &str = "optimizer/second/";

/// An optimizer's running state: its step count and each variable's first and second
/// moments, by variable name.
#[derive(Debug, Clone)]
pub struct OptimizerState {
    pub step: usize,
    pub moments: BTreeMap<String, (Tensor, Tensor)>,
}

/// What a checkpoint file holds.
#[derive(Debug)]
pub struct Checkpoint {
    pub weights: HashMap<String, Tensor>,
    /// The progress after the epoch whose weights these are; `None` in checkpoints written
    /// before it was stored here (their `state.json` says it).
    pub state: Option<TrainState>,
    /// Only in last checkpoints.
    pub optimizer: Option<OptimizerState>,
}

/// Writes `varmap`'s weights, `state` and `optimizer` to `path` atomically: a failed
/// write (a full disk) leaves the previous checkpoint as it was.
pub fn save_checkpoint(
    path: &Path,
    varmap: &VarMap,
    state: &TrainState,
    optimizer: Option<&OptimizerState>,
) -> Result<()> {
    let bytes = checkpoint_bytes(varmap, state, optimizer)
        .with_context(|| format!("serialising {}", path.display()))?;
    write_atomic(path, &bytes)
}

/// The bytes of a checkpoint file.
fn checkpoint_bytes(
    varmap: &VarMap,
    state: &TrainState,
    optimizer: Option<&OptimizerState>,
) -> Result<Vec<u8>> {
    let mut tensors: BTreeMap<String, Tensor> = varmap
        .data()
        .lock()
        .expect("VarMap lock poisoned")
        .iter()
        .map(|(name, var)| (name.clone(), var.as_tensor().clone()))
        .collect();
    let mut metadata = HashMap::from([(STATE_KEY.to_string(), serde_json::to_string(state)?)]);
    if let Some(optimizer) = optimizer {
        metadata.insert(OPTIMIZER_STEP_KEY.to_string(), optimizer.step.to_string());
        for (name, (first, second)) in &optimizer.moments {
            tensors.insert(format!("{FIRST}{name}"), first.clone());
            tensors.insert(format!("{SECOND}{name}"), second.clone());
        }
    }
    let tensors: BTreeMap<String, Tensor> = tensors
        .into_iter()
        .map(|(name, t)| Ok((name, t.to_device(&Device::Cpu)?.contiguous()?)))
        .collect::<Result<_>>()?;
    metadata.insert(DIGEST_KEY.to_string(), digest(tensors.iter().map(|(n, t)| (n, t.data()))));
    Ok(safetensors::serialize(&tensors, Some(metadata))?)
}

/// Reads a checkpoint onto `device`. A file that is truncated, corrupt or not a
/// checkpoint is an error naming it.
pub fn read_checkpoint(path: &Path, device: &Device) -> Result<Checkpoint> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    parse(&bytes, device)
        .with_context(|| format!("checkpoint {} is corrupt or truncated", path.display()))
}

fn parse(bytes: &[u8], device: &Device) -> Result<Checkpoint> {
    let (_, header) = SafeTensors::read_metadata(bytes).context("unreadable header")?;
    let metadata = header.metadata().clone().unwrap_or_default();
    let file = SafeTensors::deserialize(bytes).context("the tensor data is incomplete")?;
    let mut views = file.tensors();
    views.sort_by(|a, b| a.0.cmp(&b.0));
    if let Some(expected) = metadata.get(DIGEST_KEY) {
        let actual = digest(views.iter().map(|(name, view)| (name, view.data())));
        if &actual != expected {
            bail!("its tensor data does not match the digest it was written with");
        }
    }
    let state = metadata
        .get(STATE_KEY)
        .map(|json| serde_json::from_str::<TrainState>(json))
        .transpose()
        .context("unreadable training state")?;
    let mut weights = HashMap::new();
    let (mut firsts, mut seconds) = (BTreeMap::new(), BTreeMap::new());
    for (name, view) in views {
        let tensor = view.load(device)?;
        if let Some(var) = name.strip_prefix(FIRST) {
            firsts.insert(var.to_string(), tensor);
        } else if let Some(var) = name.strip_prefix(SECOND) {
            seconds.insert(var.to_string(), tensor);
        } else {
            weights.insert(name, tensor);
        }
    }
    let optimizer = match metadata.get(OPTIMIZER_STEP_KEY) {
        None => None,
        Some(step) => {
            let step = step.parse().context("unreadable optimizer step")?;
            let mut moments = BTreeMap::new();
            for (name, first) in firsts {
                let second = seconds.remove(&name).with_context(|| {
                    format!("the optimizer's second moment of {name} is missing")
                })?;
                moments.insert(name, (first, second));
            }
            Some(OptimizerState { step, moments })
        }
    };
    Ok(Checkpoint { weights, state, optimizer })
}

impl Checkpoint {
    /// Sets every variable of `varmap` to its weights here; `path` (where they came from)
    /// names the file in errors.
    pub fn load_into(&self, varmap: &VarMap, path: &Path) -> Result<()> {
        for (name, var) in varmap.data().lock().expect("VarMap lock poisoned").iter() {
            let weights = self.weights.get(name).with_context(|| {
                format!("{} has no weights for {name}: it is another model's", path.display())
            })?;
            var.set(&weights.to_device(var.device())?.to_dtype(var.dtype())?).with_context(
                || format!("{}: the weights of {name} do not fit the model", path.display()),
            )?;
        }
        Ok(())
    }
}

/// SHA-256 over each tensor's name and bytes, in name order.
fn digest<N: AsRef<str>, D: AsRef<[u8]>>(tensors: impl Iterator<Item = (N, D)>) -> String {
    let mut hasher = Sha256::new();
    for (name, data) in tensors {
        let data = data.as_ref();
        hasher.update(name.as_ref().as_bytes());
        hasher.update((data.len() as u64).to_le_bytes());
        hasher.update(data);
    }
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::atomic_file::write_atomic_through;

    fn model(seed: f32) -> VarMap {
        let varmap = VarMap::new();
        let vb = candle_nn::VarBuilder::from_varmap(&varmap, candle_core::DType::F32, &Device::Cpu);
        let w = vb.get_with_hints((2, 3), "head.weight", candle_nn::Init::Const(seed.into()));
        w.unwrap();
        varmap
    }

    fn state(epochs: usize) -> TrainState {
        TrainState { completed_epochs: epochs, global_step: 4 * epochs, ..Default::default() }
    }

    fn optimizer() -> OptimizerState {
        let t = |v: f32| Tensor::full(v, (2, 3), &Device::Cpu).unwrap();
        OptimizerState {
            step: 8,
            moments: BTreeMap::from([("head.weight".into(), (t(0.5), t(0.25)))]),
        }
    }

    #[test]
    fn weights_state_and_moments_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("last.safetensors");
        save_checkpoint(&path, &model(1.5), &state(2), Some(&optimizer())).unwrap();
        let read = read_checkpoint(&path, &Device::Cpu).unwrap();
        assert_eq!(read.state, Some(state(2)));
        let restored = model(0.0);
        read.load_into(&restored, &path).unwrap();
        let w = restored.data().lock().unwrap()["head.weight"].as_tensor().clone();
        assert_eq!(w.flatten_all().unwrap().to_vec1::<f32>().unwrap(), vec![1.5; 6]);
        let optimizer = read.optimizer.expect("moments were saved");
        assert_eq!(optimizer.step, 8);
        let (first, second) = &optimizer.moments["head.weight"];
        assert_eq!(first.flatten_all().unwrap().to_vec1::<f32>().unwrap(), vec![0.5; 6]);
        assert_eq!(second.flatten_all().unwrap().to_vec1::<f32>().unwrap(), vec![0.25; 6]);
        // Plain safetensors readers (eval, predict) see the weights under their names.
        let plain = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
        assert!(plain.contains_key("head.weight"));
    }

    #[test]
    fn truncated_or_flipped_files_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("last.safetensors");
        save_checkpoint(&path, &model(1.5), &state(1), Some(&optimizer())).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let truncated = &bytes[..bytes.len() - 5];
        let mut flipped = bytes.clone();
        *flipped.last_mut().unwrap() ^= 0x40;
        for broken in [truncated, &flipped[..], &bytes[..3]] {
            std::fs::write(&path, broken).unwrap();
            let message = format!("{:#}", read_checkpoint(&path, &Device::Cpu).unwrap_err());
            assert!(message.contains(&path.display().to_string()), "{message}");
            assert!(message.contains("corrupt or truncated"), "{message}");
        }
    }

    /// A full disk while the next checkpoint is written leaves the previous one readable.
    #[test]
    fn a_failed_write_keeps_the_previous_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("last.safetensors");
        save_checkpoint(&path, &model(1.5), &state(1), Some(&optimizer())).unwrap();
        let before = std::fs::read(&path).unwrap();
        let next = checkpoint_bytes(&model(9.0), &state(2), Some(&optimizer())).unwrap();
        let full = |_: &Path| std::fs::OpenOptions::new().write(true).open("/dev/full");
        assert!(write_atomic_through(&path, &next, full).is_err());
        assert_eq!(std::fs::read(&path).unwrap(), before);
        assert_eq!(read_checkpoint(&path, &Device::Cpu).unwrap().state, Some(state(1)));
    }
}
