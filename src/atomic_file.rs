//! The one way memescope replaces a file (a run directory's, a feature-cache entry, the
//! unpacked demo): write a temporary file next to it, flush it to the disk, then rename it
//! over the old one. A reader (or a resume after a crash, `kill -9`, or a full disk) sees
//! the old file or the new one, never half of one. Each writer has a temporary of its own,
//! so writers of the same file at once (runs of a sweep sharing a cache, on one machine or
//! over a shared folder) each put a whole file in place.

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
    replace_with(path, |partial| {
        let mut file = open(partial)?;
        file.write_all(bytes)?;
        Ok(())
    })
}

/// Replaces `path` with the file `write` makes at the temporary path it is given (for
/// writers that want a path, such as `safetensors::serialize_to_file`, which streams a
/// large file instead of holding it in memory twice).
pub fn replace_with(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let partial = partial_path(path);
    let written = write(&partial)
        // Without it a crash soon after the rename can leave an empty file under the name.
        .and_then(|()| Ok(File::open(&partial)?.sync_all()?))
        .with_context(|| format!("writing {}", partial.display()));
    if let Err(error) = written {
        let _ = std::fs::remove_file(&partial);
        return Err(error);
    }
    if let Err(error) = std::fs::rename(&partial, path) {
        let _ = std::fs::remove_file(&partial);
        return Err(error).with_context(|| format!("replacing {}", path.display()));
    }
    Ok(())
}

/// `last.safetensors` → `last.safetensors.partial-PID-RANDOM`: beside the file (a rename
/// never crosses file systems), never mistaken for it, and this writer's own.
fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".partial-{}-{:08x}", std::process::id(), rand::random::<u32>()));
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
        assert!(message.contains("last.safetensors.partial-"), "{message}");
        assert!(message.to_lowercase().contains("space"), "{message}");
        assert_eq!(std::fs::read(&path).unwrap(), b"the previous checkpoint");
        let files = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(files, 1, "the failed temporary is removed");
    }
}
