//! What identifies a set of cached features.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

/// Everything that changes an encoder's output, as ordered `name=value` parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheKey {
    /// `text` or `image`: also the file name prefix, so users can tell entries apart.
    pub kind: String,
    parts: Vec<(String, String)>,
}

impl CacheKey {
    pub fn new(kind: &str) -> Self {
        Self { kind: kind.to_string(), parts: Vec::new() }
    }

    pub fn with(mut self, name: &str, value: impl ToString) -> Self {
        self.parts.push((name.to_string(), value.to_string()));
        self
    }

    /// The canonical text of the key, stored in the cache file and hashed for its name.
    pub fn canonical(&self) -> String {
        let mut text = format!("kind={}", self.kind);
        for (name, value) in &self.parts {
            text.push('\n');
            text.push_str(name);
            text.push('=');
            text.push_str(value);
        }
        text
    }

    pub fn digest(&self) -> String {
        hex(&Sha256::digest(self.canonical().as_bytes()))[..24].to_string()
    }

    pub fn file_name(&self) -> String {
        format!("{}-{}.safetensors", self.kind, self.digest())
    }
}

/// The sha256 of a file's bytes, hex encoded.
pub fn hash_file(path: &Path) -> Result<String> {
    let file = File::open(path).with_context(|| format!("hashing {}", path.display()))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let read =
            reader.read(&mut buffer).with_context(|| format!("hashing {}", path.display()))?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_part_changes_the_digest() {
        let base = CacheKey::new("text").with("model", "abc").with("max_length", 128);
        let other_length = CacheKey::new("text").with("model", "abc").with("max_length", 64);
        let other_model = CacheKey::new("text").with("model", "abd").with("max_length", 128);
        let other_kind = CacheKey::new("image").with("model", "abc").with("max_length", 128);
        let digests = [&base, &other_length, &other_model, &other_kind].map(|k| k.digest());
        for (i, a) in digests.iter().enumerate() {
            for b in &digests[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_eq!(base.digest(), base.clone().digest());
        assert!(base.file_name().starts_with("text-"));
    }

    #[test]
    fn file_hash_is_sha256() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"abc").unwrap();
        assert_eq!(
            hash_file(&path).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
