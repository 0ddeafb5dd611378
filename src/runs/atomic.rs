//! The one way a run-directory file is replaced: write a temporary file next to it, flush
//! it to the disk, then rename it over the old one. A reader (or a resume after a crash,
//! `kill -9`, or a full disk) sees the old file or the new one, never half of one.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Replaces `path` with `bytes`; on failure the previous file is untouched and no
/// temporary file is left behind.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_through(path, bytes, |partial| File::create(partial))
}

/// [`write_atomic`] with the temporary file opened by `open` (given its path): tests hand
/// it a writer that fails like a full disk.
pub(crate) fn write_atomic_through(
    path: &Path,
    bytes: &[u8],
    open: impl FnOnce(&Path) -> std::io::Result<File>,
) -> Result<()> {
    let partial = partial_path(path);
    let written = open(&partial).and_then(|mut file| {
        file.write_all(bytes)?;
        // Without it a crash soon after the rename can leave an empty file under the name.
        file.sync_all()
    });
    if let Err(error) = written {
        let _ = std::fs::remove_file(&partial);
        return Err(error).with_context(|| format!("writing {}", partial.display()));
    }
    if let Err(error) = std::fs::rename(&partial, path) {
        let _ = std::fs::remove_file(&partial);
        return Err(error).with_context(|| format!("replacing {}", path.display()));
    }
    Ok(())
}

/// `last.safetensors` → `last.safetensors.partial`: beside the file (a rename never crosses
/// file systems) and never mistaken for it.
fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    /// A full disk (writes to `/dev/full` fail with ENOSPC) keeps the previous file whole.
    #[test]
    fn a_full_disk_keeps_the_previous_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("last.safetensors");
        write_atomic(&path, b"the previous checkpoint").unwrap();
        let full = |partial: &Path| {
            File::create(partial)?; // the temporary exists, as it would on a real disk
            std::fs::OpenOptions::new().write(true).open("/dev/full")
        };
        let error = write_atomic_through(&path, &[7u8; 1 << 16], full).unwrap_err();
        let message = format!("{error:#}");
        assert!(message.contains("last.safetensors.partial"), "{message}");
        assert!(message.to_lowercase().contains("space"), "{message}");
        assert_eq!(std::fs::read(&path).unwrap(), b"the previous checkpoint");
        assert!(!partial_path(&path).exists(), "the failed temporary is removed");
    }
}
