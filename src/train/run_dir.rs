//! The run directory: everything a run leaves behind, always in a consistent state.
//!
//! ```text
//! runs/<run-id>/
//!   config.toml        the resolved configuration (reproduces the run)
//!   events.jsonl       every event, one JSON object per line
//!   report.json        validation metrics of the best epoch
//!   state.json         progress, for resuming
//!   best.safetensors   weights of the best epoch
//!   last.safetensors   weights at the last epoch boundary (or stop)
//! ```

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::config::Ablation;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    pub id: String,
    pub path: PathBuf,
}

impl RunDir {
    /// Creates a fresh, uniquely named run directory under `root`.
    pub fn create(root: &Path, ablation: &Ablation) -> Result<Self> {
        Self::create_kind(root, "", ablation)
    }

    /// Like [`RunDir::create`], with `kind` (e.g. `cv-`) before the id: directories made by
    /// parallel processes in the same second still never collide.
    pub fn create_kind(root: &Path, kind: &str, ablation: &Ablation) -> Result<Self> {
        std::fs::create_dir_all(root)
            .with_context(|| format!("creating runs directory {}", root.display()))?;
        let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S");
        let label: String = ablation
            .short_label()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect::<String>()
            .split('-')
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("-");
        let label = if label.is_empty() { "run".into() } else { label };
        let base = format!("{kind}{stamp}-{label}");
        for attempt in 1.. {
            let id = if attempt == 1 { base.clone() } else { format!("{base}-{attempt}") };
            let path = root.join(&id);
            // create_dir (not _all) fails if it exists: two runs never share a directory.
            match std::fs::create_dir(&path) {
                Ok(()) => return Ok(Self { id, path }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(e).with_context(|| format!("creating run dir {}", path.display()))
                }
            }
        }
        unreachable!("the loop only ends by returning")
    }

    /// Creates the run directory `path` itself (its parent must exist); fails if it exists.
    pub fn open_new(path: &Path) -> Result<Self> {
        std::fs::create_dir(path)
            .with_context(|| format!("creating run dir {}", path.display()))?;
        let id = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        Ok(Self { id, path: path.to_path_buf() })
    }

    pub fn open(path: &Path) -> Result<Self> {
        let config = path.join("config.toml");
        if !config.is_file() {
            anyhow::bail!("{} is not a run directory (no config.toml)", path.display());
        }
        let id = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        Ok(Self { id, path: path.to_path_buf() })
    }

    pub fn config(&self) -> PathBuf {
        self.path.join("config.toml")
    }
    pub fn events(&self) -> PathBuf {
        self.path.join("events.jsonl")
    }
    pub fn report(&self) -> PathBuf {
        self.path.join("report.json")
    }
    pub fn state(&self) -> PathBuf {
        self.path.join("state.json")
    }
    pub fn best_checkpoint(&self) -> PathBuf {
        self.path.join("best.safetensors")
    }
    pub fn last_checkpoint(&self) -> PathBuf {
        self.path.join("last.safetensors")
    }
}

/// Writes through a temporary file and a rename, so readers never see half a file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let partial = path.with_extension("partial");
    std::fs::write(&partial, bytes).with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, path).with_context(|| format!("replacing {}", path.display()))
}

pub fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    write_atomic(path, text.as_bytes())
}

pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_unique_and_name_the_switches() {
        let root = tempfile::tempdir().unwrap();
        let ablation = Ablation { moe: false, ..Default::default() };
        let a = RunDir::create(root.path(), &ablation).unwrap();
        let b = RunDir::create(root.path(), &ablation).unwrap();
        assert_ne!(a.path, b.path);
        assert!(a.id.ends_with("moe"), "{}", a.id);
        assert!(RunDir::open(&a.path).is_err(), "no config.toml yet");
    }
}
