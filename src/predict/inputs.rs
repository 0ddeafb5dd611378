//! Turning the command line's files and folders into the list of images to label.

use std::path::{Path, PathBuf};

use super::Skipped;
use crate::data::IMAGE_EXTENSIONS;

/// The images named by `inputs`, in order: a file stands for itself (whatever its
/// extension: decoding decides), a folder for the image files directly inside it, sorted
/// by name. Inputs that do not exist or cannot be listed are returned as skipped.
pub fn expand_inputs(inputs: &[PathBuf]) -> (Vec<PathBuf>, Vec<Skipped>) {
    let mut images = Vec::new();
    let mut skipped = Vec::new();
    for input in inputs {
        if input.is_dir() {
            match images_in(input) {
                Ok(found) => images.extend(found),
                Err(e) => skipped.push(Skipped::new(input, format!("cannot list folder: {e}"))),
            }
        } else if input.exists() {
            images.push(input.clone());
        } else {
            skipped.push(Skipped::new(input, "no such file or folder"));
        }
    }
    (images, skipped)
}

/// Files in `dir` with an image extension (any case); other files are not memes.
fn images_in(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let is_image = path.extension().is_some_and(|ext| {
            let ext = ext.to_string_lossy().to_lowercase();
            IMAGE_EXTENSIONS.contains(&ext.as_str())
        });
        if is_image && path.is_file() {
            found.push(path);
        }
    }
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_expand_to_their_images_and_missing_inputs_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b.PNG", "a.jpg", "notes.txt", "c.webp"] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        std::fs::create_dir(dir.path().join("nested.png")).unwrap();
        let explicit = dir.path().join("notes.txt");
        let missing = dir.path().join("gone.png");
        let (images, skipped) =
            expand_inputs(&[dir.path().to_path_buf(), explicit.clone(), missing.clone()]);
        let names: Vec<_> =
            images.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(names, ["a.jpg", "b.PNG", "c.webp", "notes.txt"]);
        assert_eq!(images[3], explicit, "a file named explicitly is kept whatever its extension");
        assert_eq!(skipped.len(), 1);
        assert_eq!(skipped[0].path, missing);
        assert!(skipped[0].reason.contains("no such file"), "{}", skipped[0].reason);
    }
}
