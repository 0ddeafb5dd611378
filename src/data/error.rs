//! Errors in dataset files. Each names the file and, where there is one, the record.

use std::fmt;
use std::path::PathBuf;

/// Which record of a file an error is about: by `sample_id` when the record has a usable
/// one, otherwise by its 0-based position in the JSON array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordRef {
    Id { sample_id: String, index: usize },
    Index(usize),
}

impl fmt::Display for RecordRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordRef::Id { sample_id, index } => {
                write!(f, "record \"{sample_id}\" (index {index})")
            }
            RecordRef::Index(index) => write!(f, "record at index {index}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },

    #[error("{path} is not valid JSON: {message} (line {line}, column {column})")]
    MalformedJson { path: PathBuf, line: usize, column: usize, message: String },

    #[error("{path} must hold a JSON array of records, but its top level is {found}")]
    NotAnArray { path: PathBuf, found: &'static str },

    #[error(
        "{path}: {record} is over {} MiB, far beyond any meme record (a pasted file or \
         image?); reading stopped there",
        limit >> 20
    )]
    RecordTooLarge { path: PathBuf, record: RecordRef, limit: usize },

    #[error("{path} holds no records")]
    Empty { path: PathBuf },

    #[error("{path}: {record} is {found}, expected a JSON object")]
    NotAnObject { path: PathBuf, record: RecordRef, found: &'static str },

    #[error("{path}: {record} has no field `{field}`")]
    MissingField { path: PathBuf, record: RecordRef, field: &'static str },

    #[error("{path}: {record}: field `{field}` is {found}, expected {expected}")]
    WrongType {
        path: PathBuf,
        record: RecordRef,
        field: &'static str,
        expected: &'static str,
        found: &'static str,
    },

    #[error("{path}: {record}: `sample_id` is empty")]
    EmptyId { path: PathBuf, record: RecordRef },

    #[error("{path}: {record}: field `{field}` is empty, but every meme needs a label")]
    NoLabel { path: PathBuf, record: RecordRef, field: &'static str },

    #[error(
        "{path}: {record}: unknown label \"{label}\" in field `{field}` (known labels: {})",
        known.join(", ")
    )]
    UnknownLabel {
        path: PathBuf,
        record: RecordRef,
        field: &'static str,
        label: String,
        known: Vec<String>,
    },

    #[error(
        "{path}: sample_id \"{sample_id}\" is used twice, \
         by the records at index {first} and {second}"
    )]
    DuplicateId { path: PathBuf, sample_id: String, first: usize, second: usize },
}
