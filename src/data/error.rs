//! Errors in dataset files. Each names the file and, where there is one, the record.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    // TODO(helper A): malformed JSON (line, column), missing field, unknown label, duplicate id.
}
