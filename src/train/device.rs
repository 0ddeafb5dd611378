//! Choosing where tensors live: `cpu`, `cuda`, `cuda:N` or `auto`.

use anyhow::{bail, Context, Result};
use candle_core::Device;

use crate::events::DeviceMemory;

pub fn select_device(spec: &str) -> Result<Device> {
    match spec.trim() {
        "cpu" => Ok(Device::Cpu),
        "auto" => Ok(if candle_core::utils::cuda_is_available() {
            Device::new_cuda(0).unwrap_or(Device::Cpu)
        } else {
            Device::Cpu
        }),
        "cuda" => cuda(0),
        other => match other.strip_prefix("cuda:") {
            Some(ordinal) => cuda(
                ordinal.parse().with_context(|| format!("bad GPU ordinal in device `{other}`"))?,
            ),
            None => bail!("unknown device `{other}`: use cpu, cuda, cuda:N or auto"),
        },
    }
}

fn cuda(ordinal: usize) -> Result<Device> {
    if !candle_core::utils::cuda_is_available() {
        bail!("device cuda:{ordinal} asked for, but this build has no CUDA support: rebuild with `cargo build --release --features cuda`");
    }
    Device::new_cuda(ordinal).with_context(|| format!("opening GPU cuda:{ordinal}"))
}

/// The memory in use on `device` and its size, for a GPU; `None` for the CPU (and should
/// the driver not answer: a status line is no reason to fail a run).
pub fn memory_in_use(device: &Device) -> Option<DeviceMemory> {
    match device {
        #[cfg(feature = "cuda")]
        Device::Cuda(gpu) => {
            let (free, total) = gpu.cuda_stream().context().mem_get_info().ok()?;
            Some(DeviceMemory {
                used_bytes: total.saturating_sub(free) as u64,
                total_bytes: total as u64,
            })
        }
        _ => None,
    }
}

/// A short name for status lines.
pub fn describe(device: &Device) -> String {
    match device {
        Device::Cpu => "cpu".to_string(),
        Device::Cuda(_) => "cuda".to_string(),
        Device::Metal(_) => "metal".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_device_names() {
        assert!(select_device("cpu").unwrap().is_cpu());
        assert!(select_device("auto").is_ok());
        assert!(select_device("tpu").is_err());
        assert!(select_device("cuda:x").is_err());
        assert_eq!(memory_in_use(&Device::Cpu), None);
    }
}
