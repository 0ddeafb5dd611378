//! Reading the caption text off meme images, for datasets that come without `ocr_text`
//! (or when the user asks for fresh OCR with `--ocr always`).
//!
//! [`Tesseract`] drives the `tesseract` command-line tool; [`OcrCache`] remembers its
//! answers per image content and engine, so each image is read once; [`fill_ocr_text`]
//! puts the text into a dataset's samples. [`caption`] draws meme captions, for tests and
//! the bundled demo images.

mod cache;
pub mod caption;
mod fill;
mod prepare;
mod tesseract;

use std::path::Path;

use anyhow::Result;

pub use cache::{OcrCache, OcrCacheStatus, Recognized};
pub use fill::{fill_ocr_text, OcrFailure, OcrFillReport, OcrPolicy};
pub use tesseract::Tesseract;

/// Something that reads the text in an image.
pub trait OcrEngine: Send + Sync {
    /// Identifies the engine, its version and every setting that changes its output;
    /// cached text is only reused for the same name.
    fn name(&self) -> &str;

    /// The text in the image at `image_path`, whitespace-normalised (see
    /// [`normalize_text`]). Errors name the file.
    fn recognize(&self, image_path: &Path) -> Result<String>;
}

/// Collapses OCR output into one line: meme captions are set in several short lines
/// (top text, bottom text) that read as one sentence, and the text encoder wants that
/// sentence. Tokens made only of `|` and `_` are dropped: they are what the dark outline
/// around meme letters and the image's edges turn into, never caption text.
pub fn normalize_text(raw: &str) -> String {
    raw.split_whitespace()
        .filter(|token| !token.chars().all(|c| c == '|' || c == '_'))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_collapse_into_one_sentence() {
        let raw = "  WHEN THE DEADLINE\nIS  TOMORROW\n\n| and I'm__fine |\x0c";
        assert_eq!(normalize_text(raw), "WHEN THE DEADLINE IS TOMORROW and I'm__fine");
        assert_eq!(normalize_text(" \n\t\x0c"), "");
    }
}
