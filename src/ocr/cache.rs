//! OCR results remembered on disk, so every image is read once per engine.
//!
//! One JSON file per engine (`ocr-<digest of the engine name>.json`) maps the sha256 of
//! an image's bytes to its text. Keying by content, not path, keeps the cache valid when
//! a dataset folder moves and notices when an image is replaced. The engine name (which
//! carries its version and settings) is stored in the file too and checked on load; a
//! file that is unreadable as JSON or belongs to another engine is started afresh.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::OcrEngine;
use crate::cache::hash_file;

/// What [`OcrCache::open`] found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OcrCacheStatus {
    /// No cache file yet for this engine.
    New,
    /// A valid file with this many entries.
    Loaded { entries: usize },
    /// The file was corrupt or for another engine; it is replaced on the next save.
    Rebuilt { reason: String },
}

#[derive(Debug, Serialize, Deserialize)]
struct CacheFile {
    engine: String,
    /// sha256 of the image bytes (hex) → normalised text.
    texts: BTreeMap<String, String>,
}

/// The text of one image and whether it came from the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recognized {
    pub text: String,
    pub cached: bool,
}

#[derive(Debug)]
pub struct OcrCache {
    path: PathBuf,
    engine: String,
    texts: BTreeMap<String, String>,
    status: OcrCacheStatus,
    unsaved: usize,
}

impl OcrCache {
    /// Opens (or starts) the cache of `engine_name` under `dir`, creating `dir` if needed.
    pub fn open(dir: &Path, engine_name: &str) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating OCR cache folder {}", dir.display()))?;
        let path = dir.join(file_name(engine_name));
        let (texts, status) = match std::fs::read(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                (BTreeMap::new(), OcrCacheStatus::New)
            }
            Err(e) => {
                return Err(e).with_context(|| format!("reading OCR cache {}", path.display()))
            }
            Ok(bytes) => match serde_json::from_slice::<CacheFile>(&bytes) {
                Ok(file) if file.engine == engine_name => {
                    let entries = file.texts.len();
                    (file.texts, OcrCacheStatus::Loaded { entries })
                }
                Ok(file) => {
                    let reason = format!("it belongs to engine `{}`", file.engine);
                    (BTreeMap::new(), OcrCacheStatus::Rebuilt { reason })
                }
                Err(e) => (BTreeMap::new(), OcrCacheStatus::Rebuilt { reason: e.to_string() }),
            },
        };
        if let OcrCacheStatus::Rebuilt { reason } = &status {
            tracing::warn!("rebuilding OCR cache {}: {reason}", path.display());
        }
        Ok(Self { path, engine: engine_name.to_string(), texts, status, unsaved: 0 })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn status(&self) -> &OcrCacheStatus {
        &self.status
    }

    pub fn len(&self) -> usize {
        self.texts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.texts.is_empty()
    }

    /// The cached text of the image whose bytes hash to `content_hash`.
    pub fn get(&self, content_hash: &str) -> Option<&str> {
        self.texts.get(content_hash).map(String::as_str)
    }

    pub fn insert(&mut self, content_hash: String, text: String) {
        self.texts.insert(content_hash, text);
        self.unsaved += 1;
    }

    /// Results added since the last save.
    pub fn unsaved(&self) -> usize {
        self.unsaved
    }

    /// The text of `image`: from the cache when this engine has read these bytes before,
    /// otherwise from `engine` (and remembered, in memory until [`OcrCache::save`]).
    pub fn recognize(&mut self, engine: &dyn OcrEngine, image: &Path) -> Result<Recognized> {
        if engine.name() != self.engine {
            bail!(
                "OCR cache {} is for engine `{}`, not `{}`",
                self.path.display(),
                self.engine,
                engine.name()
            );
        }
        let hash = hash_file(image)?;
        if let Some(text) = self.get(&hash) {
            return Ok(Recognized { text: text.to_string(), cached: true });
        }
        let text = engine.recognize(image)?;
        self.insert(hash, text.clone());
        Ok(Recognized { text, cached: false })
    }

    /// Writes the cache if anything was added. The file is replaced atomically (write to
    /// a temporary file, then rename), so an interrupted save never leaves half a file.
    pub fn save(&mut self) -> Result<()> {
        if self.unsaved == 0 && !matches!(self.status, OcrCacheStatus::Rebuilt { .. }) {
            return Ok(());
        }
        let file = CacheFile { engine: self.engine.clone(), texts: self.texts.clone() };
        let json = serde_json::to_vec_pretty(&file).context("serialising the OCR cache")?;
        let temporary = self.path.with_extension("json.tmp");
        std::fs::write(&temporary, json)
            .with_context(|| format!("writing OCR cache {}", temporary.display()))?;
        std::fs::rename(&temporary, &self.path)
            .with_context(|| format!("replacing OCR cache {}", self.path.display()))?;
        self.unsaved = 0;
        self.status = OcrCacheStatus::Loaded { entries: self.texts.len() };
        Ok(())
    }
}

/// `ocr-<first 16 hex digits of sha256(engine name)>.json`: engine names hold spaces and
/// `=`, which make poor file names.
fn file_name(engine_name: &str) -> String {
    let digest = Sha256::digest(engine_name.as_bytes());
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("ocr-{hex}.json")
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Answers with the image's bytes as text and counts its calls.
    struct EchoEngine {
        name: &'static str,
        calls: AtomicUsize,
    }

    impl EchoEngine {
        fn new(name: &'static str) -> Self {
            Self { name, calls: AtomicUsize::new(0) }
        }
    }

    impl OcrEngine for EchoEngine {
        fn name(&self) -> &str {
            self.name
        }
        fn recognize(&self, image_path: &Path) -> Result<String> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            Ok(std::fs::read_to_string(image_path)?)
        }
    }

    #[test]
    fn each_image_content_is_read_once_across_sessions() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.png");
        let copy_of_a = dir.path().join("copy.png");
        std::fs::write(&a, "top text").unwrap();
        std::fs::write(&copy_of_a, "top text").unwrap();
        let engine = EchoEngine::new("echo v1");

        let mut cache = OcrCache::open(&dir.path().join("cache"), engine.name()).unwrap();
        assert_eq!(cache.status(), &OcrCacheStatus::New);
        let first = cache.recognize(&engine, &a).unwrap();
        assert_eq!(first, Recognized { text: "top text".into(), cached: false });
        // Same bytes under another name: no second OCR.
        assert!(cache.recognize(&engine, &copy_of_a).unwrap().cached);
        cache.save().unwrap();

        let mut reopened = OcrCache::open(&dir.path().join("cache"), engine.name()).unwrap();
        assert_eq!(reopened.status(), &OcrCacheStatus::Loaded { entries: 1 });
        assert!(reopened.recognize(&engine, &a).unwrap().cached);
        assert_eq!(engine.calls.load(Ordering::SeqCst), 1);

        // Changed bytes at the same path are read again.
        std::fs::write(&a, "bottom text").unwrap();
        assert_eq!(reopened.recognize(&engine, &a).unwrap().text, "bottom text");
        assert_eq!(engine.calls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn another_engine_version_does_not_reuse_texts() {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("a.png");
        std::fs::write(&image, "text").unwrap();
        let (old, new) = (EchoEngine::new("echo v1"), EchoEngine::new("echo v2"));
        let mut cache = OcrCache::open(dir.path(), old.name()).unwrap();
        cache.recognize(&old, &image).unwrap();
        cache.save().unwrap();

        let mut cache = OcrCache::open(dir.path(), new.name()).unwrap();
        assert_eq!(cache.status(), &OcrCacheStatus::New);
        assert!(!cache.recognize(&new, &image).unwrap().cached);
        let error = cache.recognize(&old, &image).unwrap_err().to_string();
        assert!(error.contains("is for engine `echo v2`, not `echo v1`"), "{error}");
    }

    #[test]
    fn a_corrupt_cache_file_is_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("a.png");
        std::fs::write(&image, "text").unwrap();
        let engine = EchoEngine::new("echo v1");
        let path = dir.path().join(file_name(engine.name()));
        std::fs::write(&path, "{\"engine\": \"echo v1\", \"texts\": {\"ab").unwrap();

        let mut cache = OcrCache::open(dir.path(), engine.name()).unwrap();
        assert!(matches!(cache.status(), OcrCacheStatus::Rebuilt { .. }), "{:?}", cache.status());
        assert!(cache.is_empty());
        assert!(!cache.recognize(&engine, &image).unwrap().cached);
        cache.save().unwrap();
        let reopened = OcrCache::open(dir.path(), engine.name()).unwrap();
        assert_eq!(reopened.status(), &OcrCacheStatus::Loaded { entries: 1 });
    }

    #[test]
    fn a_file_of_another_engine_under_this_name_is_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(file_name("echo v1"));
        std::fs::write(&path, r#"{"engine": "impostor", "texts": {"abc": "hi"}}"#).unwrap();
        let cache = OcrCache::open(dir.path(), "echo v1").unwrap();
        assert!(cache.get("abc").is_none());
        match cache.status() {
            OcrCacheStatus::Rebuilt { reason } => assert!(reason.contains("impostor"), "{reason}"),
            other => panic!("expected a rebuild, got {other:?}"),
        }
    }

    #[test]
    fn an_unreadable_image_is_an_error_naming_it_and_is_not_cached() {
        let dir = tempfile::tempdir().unwrap();
        let engine = EchoEngine::new("echo v1");
        let mut cache = OcrCache::open(dir.path(), engine.name()).unwrap();
        let missing = dir.path().join("missing.png");
        let error = format!("{:#}", cache.recognize(&engine, &missing).unwrap_err());
        assert!(error.contains("missing.png"), "{error}");
        assert!(cache.is_empty());
    }
}
