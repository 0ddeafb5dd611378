//! Reading dataset files into validated samples.
//!
//! The file is parsed into a generic JSON tree first and each record is then checked field by
//! field, so that every problem can be reported with the file, the record and the field,
//! rather than serde's generic "invalid type at line 1 column 81234".
//!
//! What the real AxiOM and RESTORE files contain, and how each variation is treated:
//! - `sample_id` is a string (`"TR-12"`); integer ids are accepted too (other exports of
//!   meme datasets use them) and turned into their decimal text. An empty id is an error,
//!   because the id names the image file.
//! - `ocr_text` may be an empty string (45 RESTORE memes carry no text) or `null`; both give
//!   an empty text. A missing `ocr_text` field is an error: it usually means a different
//!   file format, not a meme without text. Only when the text is to be read off the images
//!   by OCR (`data.ocr` with an image folder) may it be absent; such records are listed so
//!   that OCR fills exactly them.
//! - Label names are matched ignoring case and surrounding/repeated whitespace, so
//!   `" feeling  down"` is "Feeling Down". The real files spell every label exactly; this only
//!   guards against hand-edited files. A name that matches no label is an error.
//! - AxiOM's label is one string; an empty one is an error (every meme has one class).
//!   RESTORE's labels are a list, and an empty list is a valid answer: none of the seven
//!   categories applies (the official test split has such records). It trains as an
//!   all-negative target and scores as an all-zero truth row; `Dataset::unlabelled` counts
//!   them so that loading can say how many there are. A list of blank names is an error.
//!   A label repeated within one list counts once.
//! - The reasoning fields (RESTORE validation only) are plain strings; `null` or blank means
//!   absent.
//! - Fields the project does not use are ignored.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::bounded::{read_bounded, MAX_RECORD_BYTES};
use super::error::RecordRef;
use super::{DataError, Dataset, DatasetFormat, LabelSpace, Reasoning, Sample};

/// Whether records must carry an `ocr_text` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TextField {
    Required,
    /// Absent text reads as empty; the records without it are reported.
    Optional,
}

/// The dataset in `path` and the indices of its records that have no `ocr_text` field
/// (always empty with [`TextField::Required`]).
pub(super) fn read_dataset(
    path: PathBuf,
    format: DatasetFormat,
    text: TextField,
) -> Result<(Dataset, Vec<usize>), DataError> {
    let bytes = read_bounded(&path, MAX_RECORD_BYTES)?;
    let (samples, without_text) = parse_records(&path, &bytes, format, text)?;
    Ok((Dataset { source: path, format, space: format.label_space(), samples }, without_text))
}

/// Parses and validates the records of one file; `path` is only used in error messages.
fn parse_records(
    path: &Path,
    bytes: &[u8],
    format: DatasetFormat,
    text: TextField,
) -> Result<(Vec<Sample>, Vec<usize>), DataError> {
    let root: Value = serde_json::from_slice(bytes).map_err(|e| DataError::MalformedJson {
        path: path.to_path_buf(),
        line: e.line(),
        column: e.column(),
        message: json_message(&e),
    })?;
    let Value::Array(records) = root else {
        return Err(DataError::NotAnArray { path: path.to_path_buf(), found: kind(&root) });
    };
    if records.is_empty() {
        return Err(DataError::Empty { path: path.to_path_buf() });
    }

    let reader =
        RecordReader { path, space: format.label_space(), field: format.label_field(), text };
    let mut first_index_of_id: HashMap<String, usize> = HashMap::with_capacity(records.len());
    let mut samples = Vec::with_capacity(records.len());
    let mut without_text = Vec::new();
    for (index, record) in records.iter().enumerate() {
        let (sample, has_text) = reader.sample(index, record)?;
        if !has_text {
            without_text.push(index);
        }
        if let Some(&first) = first_index_of_id.get(&sample.sample_id) {
            return Err(DataError::DuplicateId {
                path: path.to_path_buf(),
                sample_id: sample.sample_id,
                first,
                second: index,
            });
        }
        first_index_of_id.insert(sample.sample_id.clone(), index);
        samples.push(sample);
    }
    Ok((samples, without_text))
}

/// serde_json's message without its trailing " at line L column C", which we print ourselves.
fn json_message(e: &serde_json::Error) -> String {
    let full = e.to_string();
    match full.rfind(" at line ") {
        Some(cut) => full[..cut].to_string(),
        None => full,
    }
}

/// A JSON value's kind, as an error message names it.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

struct RecordReader<'a> {
    path: &'a Path,
    space: LabelSpace,
    field: &'static str,
    text: TextField,
}

impl RecordReader<'_> {
    /// The record's sample, and whether it has an `ocr_text` field.
    fn sample(&self, index: usize, record: &Value) -> Result<(Sample, bool), DataError> {
        let Value::Object(fields) = record else {
            return Err(DataError::NotAnObject {
                path: self.path.to_path_buf(),
                record: RecordRef::Index(index),
                found: kind(record),
            });
        };
        let sample_id = self.sample_id(index, fields)?;
        let at = RecordRef::Id { sample_id: sample_id.clone(), index };
        let text = match (fields.get("ocr_text"), self.text) {
            (None, TextField::Optional) => None,
            (None, TextField::Required) => Some(self.required(&at, fields, "ocr_text")?),
            (Some(value), _) => Some(value),
        };
        let ocr_text = match text {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(text)) => text.clone(),
            Some(other) => return Err(self.wrong_type(&at, "ocr_text", "a string or null", other)),
        };
        let labels = self.labels(&at, self.required(&at, fields, self.field)?)?;
        let reasoning = Reasoning {
            figurative_reasoning: self.optional_text(&at, fields, "figurative_reasoning")?,
            cause_effect: self.optional_text(&at, fields, "cause_effect")?,
            figurative_understanding: self.optional_text(
                &at,
                fields,
                "figurative_understanding",
            )?,
            mental_state: self.optional_text(&at, fields, "mental_state")?,
        };
        Ok((Sample { sample_id, ocr_text, labels, reasoning }, text.is_some()))
    }

    fn sample_id(&self, index: usize, fields: &Map<String, Value>) -> Result<String, DataError> {
        let at = RecordRef::Index(index);
        let id = match self.required(&at, fields, "sample_id")? {
            Value::String(id) => id.clone(),
            Value::Number(n) if n.is_u64() || n.is_i64() => n.to_string(),
            other => return Err(self.wrong_type(&at, "sample_id", "a string or integer", other)),
        };
        if id.trim().is_empty() {
            return Err(DataError::EmptyId { path: self.path.to_path_buf(), record: at });
        }
        Ok(id)
    }

    /// The label indices of one record, sorted and without repeats.
    fn labels(&self, at: &RecordRef, value: &Value) -> Result<Vec<usize>, DataError> {
        let names: Vec<&str> = match (self.space.multi_label, value) {
            (false, Value::String(name)) => vec![name],
            (false, other) => return Err(self.wrong_type(at, self.field, "a label name", other)),
            (true, Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::String(name) => Ok(name.as_str()),
                    other => Err(self.wrong_type(at, self.field, "a list of label names", other)),
                })
                .collect::<Result<_, _>>()?,
            (true, other) => {
                return Err(self.wrong_type(at, self.field, "a list of label names", other))
            }
        };
        if self.space.multi_label && names.is_empty() {
            return Ok(Vec::new());
        }
        if names.iter().all(|name| name.trim().is_empty()) {
            return Err(DataError::NoLabel {
                path: self.path.to_path_buf(),
                record: at.clone(),
                field: self.field,
            });
        }
        let mut labels = names
            .into_iter()
            .map(|name| {
                find_label(&self.space, name).ok_or_else(|| DataError::UnknownLabel {
                    path: self.path.to_path_buf(),
                    record: at.clone(),
                    field: self.field,
                    label: name.to_string(),
                    known: self.space.labels.clone(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        labels.sort_unstable();
        labels.dedup();
        Ok(labels)
    }

    fn required<'v>(
        &self,
        at: &RecordRef,
        fields: &'v Map<String, Value>,
        field: &'static str,
    ) -> Result<&'v Value, DataError> {
        fields.get(field).ok_or_else(|| DataError::MissingField {
            path: self.path.to_path_buf(),
            record: at.clone(),
            field,
        })
    }

    /// An optional free-text field: absent, `null` and blank all mean "none".
    fn optional_text(
        &self,
        at: &RecordRef,
        fields: &Map<String, Value>,
        field: &'static str,
    ) -> Result<Option<String>, DataError> {
        match fields.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) if text.trim().is_empty() => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.clone())),
            Some(other) => Err(self.wrong_type(at, field, "a string or null", other)),
        }
    }

    fn wrong_type(
        &self,
        at: &RecordRef,
        field: &'static str,
        expected: &'static str,
        found: &Value,
    ) -> DataError {
        DataError::WrongType {
            path: self.path.to_path_buf(),
            record: at.clone(),
            field,
            expected,
            found: kind(found),
        }
    }
}

/// The label `name` stands for, ignoring case and whitespace differences.
fn find_label(space: &LabelSpace, name: &str) -> Option<usize> {
    let wanted = normalise(name);
    space.labels.iter().position(|label| normalise(label) == wanted)
}

fn normalise(name: &str) -> String {
    name.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str, format: DatasetFormat) -> Vec<Sample> {
        parse_records(Path::new("t.json"), json.as_bytes(), format, TextField::Required).unwrap().0
    }

    fn labels_of(json: &str, format: DatasetFormat) -> Vec<usize> {
        parse(json, format)[0].labels.clone()
    }

    #[test]
    fn label_names_match_despite_case_and_whitespace() {
        let json =
            r#"[{"sample_id":"a","ocr_text":"x","meme_anxiety_category":" impending  DOOM "}]"#;
        assert_eq!(labels_of(json, DatasetFormat::Axiom), vec![5]);
    }

    #[test]
    fn multi_label_lists_are_sorted_and_deduplicated() {
        let json = r#"[{"sample_id":"a","ocr_text":"x",
            "meme_depressive_categories":["Self-Harm","Feeling Down","feeling down"]}]"#;
        assert_eq!(labels_of(json, DatasetFormat::Restore), vec![1, 6]);
    }

    #[test]
    fn integer_ids_and_null_text_are_accepted() {
        let json = r#"[{"sample_id":17,"ocr_text":null,"meme_anxiety_category":"Nervousness",
            "extra":{"ignored":true}}]"#;
        let samples = parse(json, DatasetFormat::Axiom);
        assert_eq!(samples[0].sample_id, "17");
        assert_eq!(samples[0].ocr_text, "");
        assert_eq!(samples[0].labels, vec![0]);
    }

    #[test]
    fn blank_reasoning_fields_count_as_absent() {
        let json = r#"[{"sample_id":"a","ocr_text":"x","meme_depressive_categories":["Self-Harm"],
            "cause_effect":"  ","mental_state":null,"figurative_understanding":"sad"}]"#;
        let samples = parse(json, DatasetFormat::Restore);
        let r = &samples[0].reasoning;
        assert_eq!((r.cause_effect.as_deref(), r.mental_state.as_deref()), (None, None));
        assert_eq!(r.figurative_understanding.as_deref(), Some("sad"));
        assert_eq!(r.figurative_reasoning, None);
    }

    #[test]
    fn absent_text_is_listed_only_when_optional() {
        let json = r#"[
            {"sample_id":"a","ocr_text":"x","meme_anxiety_category":"Nervousness"},
            {"sample_id":"b","meme_anxiety_category":"Nervousness"},
            {"sample_id":"c","ocr_text":null,"meme_anxiety_category":"Nervousness"}]"#;
        let path = Path::new("t.json");
        let (samples, without_text) =
            parse_records(path, json.as_bytes(), DatasetFormat::Axiom, TextField::Optional)
                .unwrap();
        assert_eq!(without_text, [1], "a null text is present (a meme without text)");
        assert_eq!(samples[1].ocr_text, "");
        let error = parse_records(path, json.as_bytes(), DatasetFormat::Axiom, TextField::Required)
            .unwrap_err();
        assert!(error.to_string().contains("record \"b\" (index 1) has no field `ocr_text`"));
    }
}
