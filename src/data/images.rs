//! Finding and decoding each meme's image; missing or broken images are masked, and counted.
//!
//! A sample whose image is missing or cannot be decoded stays in the dataset: the model still
//! has its text, and the vision input is masked for it. Each image is decoded once up front so
//! that a broken file is reported before training starts rather than in the middle of it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use image::{DynamicImage, ImageReader};

use super::Sample;

/// Image extensions looked for, in order of preference when several files share an id.
pub const IMAGE_EXTENSIONS: [&str; 4] = ["jpg", "jpeg", "png", "webp"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageStatus {
    Found(PathBuf),
    Missing,
    Undecodable { path: PathBuf, reason: String },
}

/// Where each sample's image is, in sample order, and how many must be masked.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageReport {
    pub statuses: Vec<ImageStatus>,
}

impl ImageReport {
    pub fn masked(&self) -> usize {
        self.statuses.iter().filter(|s| !matches!(s, ImageStatus::Found(_))).count()
    }

    pub fn missing(&self) -> usize {
        self.statuses.iter().filter(|s| matches!(s, ImageStatus::Missing)).count()
    }

    pub fn undecodable(&self) -> usize {
        self.statuses.iter().filter(|s| matches!(s, ImageStatus::Undecodable { .. })).count()
    }

    /// The decoded image of sample `i`, or `None` when it is masked (or has become unreadable
    /// since it was checked). Images are decoded again on each call rather than kept: a few
    /// thousand decoded memes would hold gigabytes.
    pub fn load(&self, i: usize) -> Option<DynamicImage> {
        match self.statuses.get(i)? {
            ImageStatus::Found(path) => decode(path).ok(),
            _ => None,
        }
    }

    /// One line for the user, e.g.
    /// `3 of 120 images masked: 2 missing, 1 undecodable (first: foo.jpg: ...)`.
    pub fn summary(&self) -> String {
        let total = self.statuses.len();
        let masked = self.masked();
        if masked == 0 {
            return format!("{total} of {total} images found, none masked");
        }
        let mut line = format!(
            "{masked} of {total} images masked: {} missing, {} undecodable",
            self.missing(),
            self.undecodable()
        );
        let first_broken = self.statuses.iter().find_map(|s| match s {
            ImageStatus::Undecodable { path, reason } => Some((path, reason)),
            _ => None,
        });
        if let Some((path, reason)) = first_broken {
            line.push_str(&format!(" (first: {}: {reason})", path.display()));
        }
        line
    }
}

/// Looks up `<sample_id>.<jpg|jpeg|png|webp>` (extension in any case) in `dir` for every
/// sample and checks it decodes. An unreadable `dir` leaves every image missing.
pub fn resolve_images(dir: &Path, samples: &[Sample]) -> ImageReport {
    let candidates = candidates_by_id(dir);
    let no_candidates = Vec::new();
    let lookups: Vec<&Vec<PathBuf>> = samples
        .iter()
        .map(|s| candidates.get(s.sample_id.as_str()).unwrap_or(&no_candidates))
        .collect();
    // Decoding dominates; spread it over the cores in contiguous chunks.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).max(1);
    let chunk = lookups.len().div_ceil(threads).max(1);
    let statuses = std::thread::scope(|scope| {
        let handles: Vec<_> = lookups
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(|c| status_of(c)).collect::<Vec<_>>()))
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("image check panicked")).collect()
    });
    ImageReport { statuses }
}

/// Whether the file at `path` is an image that decodes (by content, not extension).
pub fn check_image(path: &Path) -> ImageStatus {
    status_of(std::slice::from_ref(&path.to_path_buf()))
}

/// Image files in `dir` grouped by file stem, each group in order of extension preference.
fn candidates_by_id(dir: &Path) -> HashMap<String, Vec<PathBuf>> {
    let mut by_id: HashMap<String, Vec<(usize, PathBuf)>> = HashMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return HashMap::new();
    };
    for path in entries.filter_map(|e| e.ok()).map(|e| e.path()) {
        let (Some(stem), Some(ext)) = (path.file_stem(), path.extension()) else {
            continue;
        };
        let ext = ext.to_string_lossy().to_lowercase();
        if let Some(rank) = IMAGE_EXTENSIONS.iter().position(|&e| e == ext) {
            by_id.entry(stem.to_string_lossy().into_owned()).or_default().push((rank, path));
        }
    }
    by_id
        .into_iter()
        .map(|(id, mut files)| {
            files.sort();
            (id, files.into_iter().map(|(_, path)| path).collect())
        })
        .collect()
}

/// The first candidate that decodes; if none does, the first one's error.
fn status_of(candidates: &[PathBuf]) -> ImageStatus {
    let mut first_error = None;
    for path in candidates {
        match decode(path) {
            Ok(_) => return ImageStatus::Found(path.clone()),
            Err(reason) => {
                first_error.get_or_insert_with(|| (path.clone(), reason));
            }
        }
    }
    match first_error {
        Some((path, reason)) => ImageStatus::Undecodable { path, reason },
        None => ImageStatus::Missing,
    }
}

/// Decodes by content, not extension: scraped memes are often PNGs named `.jpg`.
fn decode(path: &Path) -> Result<DynamicImage, String> {
    let reader = ImageReader::open(path).map_err(|e| e.to_string())?;
    let reader = reader.with_guessed_format().map_err(|e| e.to_string())?;
    reader.decode().map_err(|e| e.to_string())
}
