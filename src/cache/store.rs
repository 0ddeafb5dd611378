//! Reading and writing cache entries.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;
use sha2::{Digest, Sha256};

use super::CacheKey;

const TENSOR_NAME: &str = "features";

/// How a lookup went, so that callers can tell the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheStatus {
    Hit(PathBuf),
    /// Nothing cached yet; computed and stored.
    Miss(PathBuf),
    /// A file was there but unusable (partial, corrupt, another key); recomputed.
    Rebuilt {
        path: PathBuf,
        reason: String,
    },
}

impl CacheStatus {
    pub fn is_hit(&self) -> bool {
        matches!(self, CacheStatus::Hit(_))
    }

    pub fn describe(&self) -> String {
        match self {
            CacheStatus::Hit(path) => format!("cache hit: {}", path.display()),
            CacheStatus::Miss(path) => format!("cache miss, stored {}", path.display()),
            CacheStatus::Rebuilt { path, reason } => {
                format!("cache entry {} was unusable ({reason}); rebuilt it", path.display())
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct FeatureCache {
    dir: PathBuf,
}

impl FeatureCache {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn path(&self, key: &CacheKey) -> PathBuf {
        self.dir.join(key.file_name())
    }

    /// Returns the cached features for `key`, or computes, stores and returns them.
    /// `rows` is the number of items the features must cover (their first dimension).
    pub fn get_or_compute(
        &self,
        key: &CacheKey,
        rows: usize,
        compute: impl FnOnce() -> Result<Tensor>,
    ) -> Result<(Tensor, CacheStatus)> {
        let path = self.path(key);
        let previous_problem = if path.exists() {
            match read_entry(&path, key, rows) {
                Ok(tensor) => return Ok((tensor, CacheStatus::Hit(path))),
                Err(problem) => Some(format!("{problem:#}")),
            }
        } else {
            None
        };
        let tensor = compute()?;
        if tensor.dim(0)? != rows {
            bail!("encoder returned {} rows for {rows} items", tensor.dim(0)?);
        }
        write_entry(&path, key, &tensor)?;
        let status = match previous_problem {
            Some(reason) => CacheStatus::Rebuilt { path, reason },
            None => CacheStatus::Miss(path),
        };
        Ok((tensor, status))
    }
}

fn digest(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn write_entry(path: &Path, key: &CacheKey, tensor: &Tensor) -> Result<()> {
    let dir = path.parent().expect("cache paths have a parent");
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating cache dir {}", dir.display()))?;
    let tensor = tensor.to_dtype(DType::F32)?.to_device(&Device::Cpu)?.contiguous()?;
    let values: Vec<f32> = tensor.flatten_all()?.to_vec1()?;
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let metadata = HashMap::from([
        ("key".to_string(), key.canonical()),
        ("sha256".to_string(), digest(&bytes)),
    ]);
    let view = TensorView::new(Dtype::F32, tensor.dims().to_vec(), &bytes)?;
    // An interrupted write never leaves a file under the entry's name, and runs of a sweep
    // sharing the cache may write the same entry at once.
    crate::atomic_file::replace_with(path, |partial| {
        Ok(safetensors::serialize_to_file([(TENSOR_NAME, view)], Some(metadata), partial)?)
    })
    .with_context(|| format!("writing cache entry {}", path.display()))
}

fn read_entry(path: &Path, key: &CacheKey, rows: usize) -> Result<Tensor> {
    let buffer = std::fs::read(path)?;
    let (_, header) = SafeTensors::read_metadata(&buffer).context("unreadable header")?;
    let metadata = header.metadata().clone().unwrap_or_default();
    if metadata.get("key") != Some(&key.canonical()) {
        bail!("it was written for another key");
    }
    let tensors = SafeTensors::deserialize(&buffer).context("truncated or malformed")?;
    let view = tensors.tensor(TENSOR_NAME).context("no features tensor")?;
    if view.dtype() != Dtype::F32 {
        bail!("unexpected dtype {:?}", view.dtype());
    }
    if metadata.get("sha256") != Some(&digest(view.data())) {
        bail!("its contents do not match their checksum");
    }
    if view.shape().first() != Some(&rows) {
        bail!("it holds {:?} rows, expected {rows}", view.shape().first());
    }
    Ok(Tensor::from_raw_buffer(view.data(), DType::F32, view.shape(), &Device::Cpu)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn features(rows: usize) -> Tensor {
        Tensor::arange(0f32, (rows * 6) as f32, &Device::Cpu)
            .unwrap()
            .reshape((rows, 2, 3))
            .unwrap()
    }

    fn same(a: &Tensor, b: &Tensor) -> bool {
        a.flatten_all().unwrap().to_vec1::<f32>().unwrap()
            == b.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    }

    #[test]
    fn second_lookup_hits_and_returns_the_same_features() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FeatureCache::new(dir.path());
        let key = CacheKey::new("text").with("model", "m");
        let (first, status) = cache.get_or_compute(&key, 4, || Ok(features(4))).unwrap();
        assert!(matches!(status, CacheStatus::Miss(_)));
        let (second, status) =
            cache.get_or_compute(&key, 4, || panic!("must not recompute")).unwrap();
        assert!(status.is_hit());
        assert_eq!(second.dims(), &[4, 2, 3]);
        assert!(same(&first, &second));
    }

    #[test]
    fn changed_key_recomputes() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FeatureCache::new(dir.path());
        let key = CacheKey::new("text").with("max_length", 128);
        cache.get_or_compute(&key, 4, || Ok(features(4))).unwrap();
        let other = CacheKey::new("text").with("max_length", 64);
        let mut computed = false;
        cache
            .get_or_compute(&other, 4, || {
                computed = true;
                Ok(features(4))
            })
            .unwrap();
        assert!(computed);
    }

    #[test]
    fn truncated_corrupt_or_foreign_entries_are_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FeatureCache::new(dir.path());
        let key = CacheKey::new("text").with("model", "m");
        let path = cache.path(&key);
        type Spoil = Box<dyn Fn(&mut Vec<u8>)>;
        let damage: [(&str, Spoil); 3] = [
            ("truncated", Box::new(|bytes: &mut Vec<u8>| bytes.truncate(bytes.len() - 5))),
            (
                "checksum",
                Box::new(|bytes: &mut Vec<u8>| {
                    let last = bytes.len() - 1;
                    bytes[last] ^= 0x40;
                }),
            ),
            ("key", Box::new(|bytes: &mut Vec<u8>| *bytes = b"garbage".to_vec())),
        ];
        for (name, spoil) in damage {
            cache.get_or_compute(&key, 4, || Ok(features(4))).unwrap();
            let mut bytes = std::fs::read(&path).unwrap();
            spoil(&mut bytes);
            std::fs::write(&path, bytes).unwrap();
            let (tensor, status) = cache.get_or_compute(&key, 4, || Ok(features(4))).unwrap();
            assert!(matches!(status, CacheStatus::Rebuilt { .. }), "{name}: {status:?}");
            assert!(same(&tensor, &features(4)), "{name}");
            let (_, status) = cache.get_or_compute(&key, 4, || panic!("fixed")).unwrap();
            assert!(status.is_hit(), "{name}: the rebuilt entry is used next time");
        }
    }

    #[test]
    fn wrong_row_count_is_not_used() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FeatureCache::new(dir.path());
        let key = CacheKey::new("text");
        cache.get_or_compute(&key, 4, || Ok(features(4))).unwrap();
        let (_, status) = cache.get_or_compute(&key, 5, || Ok(features(5))).unwrap();
        assert!(matches!(status, CacheStatus::Rebuilt { .. }));
    }
}
