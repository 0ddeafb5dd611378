//! Meme datasets: AxiOM (single-label anxiety) and RESTORE (multi-label depression).
//!
//! Records are JSON arrays of objects with `sample_id`, `ocr_text`, a label field and,
//! sometimes, vision-language "figurative reasoning" fields. Images live in a folder as
//! `<sample_id>.<jpg|jpeg|png|webp>`.

mod bounded;
mod error;
mod folds;
mod images;
mod labels;
mod reader;
mod split;

pub use bounded::MAX_RECORD_BYTES;
pub use error::{DataError, RecordRef};
pub use folds::{fold_train_indices, stratified_folds};
pub use images::{check_image, resolve_images, ImageReport, ImageStatus, IMAGE_EXTENSIONS};
pub use labels::{DatasetFormat, LabelSpace, AXIOM_LABELS, RESTORE_LABELS};
pub use split::stratified_split;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The vision-language model's reasoning about a meme, present in some files.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reasoning {
    pub figurative_reasoning: Option<String>,
    pub cause_effect: Option<String>,
    pub figurative_understanding: Option<String>,
    pub mental_state: Option<String>,
}

impl Reasoning {
    pub fn is_empty(&self) -> bool {
        self.joined().is_empty()
    }

    /// All present reasoning fields joined by spaces, in a fixed order.
    ///
    /// In the real RESTORE files `figurative_reasoning` is the other three fields numbered and
    /// concatenated ("1. Cause-Effect: … 2. Figurative Understanding: … 3. Mental State: …"),
    /// so a part already quoted inside it is not repeated: the text encoder would otherwise
    /// see every sentence twice and truncate twice as early.
    pub fn joined(&self) -> String {
        let whole = self.figurative_reasoning.as_deref().map(str::trim).unwrap_or("");
        let parts = [&self.cause_effect, &self.figurative_understanding, &self.mental_state]
            .into_iter()
            .flatten()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty() && !whole.contains(s));
        std::iter::once(whole).chain(parts).filter(|s| !s.is_empty()).collect::<Vec<_>>().join(" ")
    }
}

/// Whether any record of a dataset file has a non-empty reasoning field, without
/// validating the rest of it. Unreadable or malformed files answer `false`: callers use this
/// to plan runs, and loading the file for a run reports what is wrong with it.
pub fn file_has_reasoning(path: &Path) -> bool {
    let Ok(bytes) = bounded::read_bounded(path, bounded::MAX_RECORD_BYTES) else {
        return false;
    };
    // The fields are `Reasoning`'s own; anything else in a record is skipped.
    let Ok(records) = serde_json::from_slice::<Vec<Reasoning>>(&bytes) else {
        return false;
    };
    records.iter().any(|reasoning| !reasoning.is_empty())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    pub sample_id: String,
    /// May be empty: some memes carry no text.
    pub ocr_text: String,
    /// Indices into the dataset's label space; exactly one for single-label datasets.
    pub labels: Vec<usize>,
    pub reasoning: Reasoning,
}

/// Separator placed between OCR text and reasoning, as in the reference (`ocr [SEP] reasoning`).
pub const TEXT_SEPARATOR: &str = " [SEP] ";

impl Sample {
    /// The text the text encoder sees, given which text sources are switched on.
    pub fn model_text(&self, use_ocr: bool, use_figurative: bool) -> String {
        let reasoning = if use_figurative { self.reasoning.joined() } else { String::new() };
        let ocr = if use_ocr { self.ocr_text.trim() } else { "" };
        match (ocr.is_empty(), reasoning.is_empty()) {
            (_, true) => ocr.to_string(),
            (true, false) => reasoning,
            (false, false) => format!("{ocr}{TEXT_SEPARATOR}{reasoning}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// The file the records came from.
    pub source: PathBuf,
    pub format: DatasetFormat,
    pub space: LabelSpace,
    pub samples: Vec<Sample>,
}

impl Dataset {
    /// Reads and validates a dataset file. Errors name the file, the record and the problem.
    pub fn load(path: impl Into<PathBuf>, format: DatasetFormat) -> Result<Self, DataError> {
        Ok(reader::read_dataset(path.into(), format, reader::TextField::Required)?.0)
    }

    /// Like [`Dataset::load`], but records may lack `ocr_text` (their text is to be read off
    /// their images): those get an empty text, and their indices are returned with the set.
    pub fn load_allowing_missing_text(
        path: impl Into<PathBuf>,
        format: DatasetFormat,
    ) -> Result<(Self, Vec<usize>), DataError> {
        reader::read_dataset(path.into(), format, reader::TextField::Optional)
    }

    /// The samples at `indices`, in that order.
    pub fn subset(&self, indices: &[usize]) -> Dataset {
        Dataset {
            source: self.source.clone(),
            format: self.format,
            space: self.space.clone(),
            samples: indices.iter().map(|&i| self.samples[i].clone()).collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// How many samples have no label at all: multi-label records where none of the
    /// categories applies (single-label records always have one).
    pub fn unlabelled(&self) -> usize {
        self.samples.iter().filter(|s| s.labels.is_empty()).count()
    }

    /// Whether any record carries figurative reasoning.
    pub fn has_reasoning(&self) -> bool {
        self.samples.iter().any(|s| !s.reasoning.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_non_blank_reasoning_field_counts() {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, json: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, json).unwrap();
            path
        };
        let blank = file("blank.json", r#"[{"sample_id":"a","ocr_text":"x","cause_effect":"  "}]"#);
        let part =
            file("part.json", r#"[{"sample_id":"a"},{"sample_id":"b","mental_state":"low"}]"#);
        let broken = file("broken.json", r#"[{"sample_id":"a","mental_state":"low"}"#);
        assert!(!file_has_reasoning(&blank));
        assert!(file_has_reasoning(&part));
        assert!(!file_has_reasoning(&broken));
        assert!(!file_has_reasoning(&dir.path().join("missing.json")));
    }
}
