//! The bundled demo, carried inside the binary: `memescope` with no arguments trains on it
//! from any directory, also after `cargo install`, where no checkout is around.
//!
//! Run from a checkout, `configs/demo.toml` is used in place. Elsewhere the embedded copy of
//! it and of `assets/demo` is unpacked once into a cache folder, keeping their layout so
//! that the config's relative paths hold. Its text encoder is then the hub copy of
//! all-MiniLM-L6-v2 (the checkout's offline copy in `models/` is not there), downloaded on
//! first use into hf-hub's cache.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The demo config, relative to a checkout (and to the unpacked copy).
pub const CONFIG: &str = "configs/demo.toml";

/// The offline encoder the checkout's demo config names, and the hub id of the same model.
const LOCAL_MODEL: &str = r#"model = "../models/all-MiniLM-L6-v2""#;
const HUB_MODEL: &str = r#"model = "sentence-transformers/all-MiniLM-L6-v2""#;

/// `(path relative to the checkout, contents)` of the demo config and data.
const FILES: &[(&str, &[u8])] = include!(concat!(env!("OUT_DIR"), "/demo_files.rs"));

/// Where the demo is unpacked: `$XDG_CACHE_HOME/memescope/demo-<version>`, else
/// `~/.cache/memescope/demo-<version>`.
pub fn default_dir() -> Result<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .context("neither XDG_CACHE_HOME nor HOME is set: nowhere to unpack the demo")?;
    Ok(base.join("memescope").join(format!("demo-{}", env!("CARGO_PKG_VERSION"))))
}

/// Unpacks the demo into `dir` (files already there with the right contents are kept) and
/// returns its config's path.
pub fn unpack(dir: &Path) -> Result<PathBuf> {
    for (relative, contents) in FILES {
        let contents: std::borrow::Cow<[u8]> = if *relative == CONFIG {
            let text = std::str::from_utf8(contents).expect("the demo config is UTF-8");
            text.replace(LOCAL_MODEL, HUB_MODEL).into_bytes().into()
        } else {
            (*contents).into()
        };
        let path = dir.join(relative);
        if std::fs::read(&path).is_ok_and(|existing| existing == *contents) {
            continue;
        }
        let parent = path.parent().expect("a file under dir");
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
        // Two first runs at once never see half a file.
        crate::atomic_file::write_atomic(&path, &contents)
            .with_context(|| format!("unpacking the demo into {}", path.display()))?;
    }
    Ok(dir.join(CONFIG))
}

/// The demo config to use from the current directory: the checkout's, else the unpacked one.
pub fn config_path() -> Result<PathBuf> {
    if Path::new(CONFIG).is_file() {
        return Ok(PathBuf::from(CONFIG));
    }
    let dir = default_dir()?;
    tracing::info!("no {CONFIG} here: using the bundled demo, unpacked in {}", dir.display());
    unpack(&dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_demo_config_names_the_offline_encoder_it_swaps_for_the_hub() {
        let (_, config) = FILES.iter().find(|(path, _)| *path == CONFIG).unwrap();
        assert!(std::str::from_utf8(config).unwrap().contains(LOCAL_MODEL));
        assert!(FILES.iter().any(|(path, _)| *path == "assets/demo/train.json"));
    }
}
