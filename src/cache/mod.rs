//! The feature cache: frozen encoder outputs computed once, stored on disk, reused by
//! every later run and ablation that would compute the same thing.
//!
//! A cache entry is one safetensors file whose name is the digest of a [`CacheKey`] —
//! everything that changes the features (model files, dataset file, text fields, max
//! length, layers, pooling, image preprocessing). The key is also stored inside the file
//! and checked on load, so a renamed, partial or corrupt file is detected and rebuilt.

mod key;
mod store;

pub use key::{hash_file, CacheKey};
pub use store::{CacheStatus, FeatureCache};
