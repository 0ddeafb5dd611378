//! Reading a dataset file with a cap on the size of each record.
//!
//! A meme record is a few kilobytes (OCR text, labels, a few sentences of reasoning). A
//! record of gigabytes is a broken export (a base64 image pasted into `ocr_text`, a file
//! concatenated into itself), and reading it whole before parsing would allocate all of it,
//! then the parsed tree again. The file is read in chunks and scanned as it arrives: the
//! first record that outgrows [`MAX_RECORD_BYTES`] stops the read, with an error naming the
//! file and the record, having held no more than that record's first bytes.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use super::error::RecordRef;
use super::DataError;

/// The largest record accepted, in bytes of JSON text. Thousands of times a real meme's.
pub const MAX_RECORD_BYTES: usize = 16 << 20;

/// The bytes of the dataset file at `path`, refusing any top-level record over `limit` bytes.
pub(super) fn read_bounded(path: &Path, limit: usize) -> Result<Vec<u8>, DataError> {
    let io = |source| DataError::Io { path: path.to_path_buf(), source };
    let mut file = File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    let mut scan = RecordScan::default();
    let mut chunk = vec![0u8; 1 << 16];
    loop {
        let read = match file.read(&mut chunk) {
            Ok(0) => return Ok(bytes),
            Ok(read) => read,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io(e)),
        };
        for &byte in &chunk[..read] {
            if scan.step(byte) > limit {
                return Err(DataError::RecordTooLarge {
                    path: path.to_path_buf(),
                    record: RecordRef::Index(scan.record),
                    limit,
                });
            }
        }
        bytes.extend_from_slice(&chunk[..read]);
    }
}

/// Where a byte stream of JSON stands: inside a string or not, how deeply nested, which
/// top-level array element it is in and how long that element is so far. Malformed JSON is
/// not judged here; the parser that follows reports it with its line and column.
#[derive(Default)]
struct RecordScan {
    depth: usize,
    in_string: bool,
    escaped: bool,
    /// 0-based index of the current element of the top-level array.
    record: usize,
    record_bytes: usize,
}

impl RecordScan {
    /// Takes one byte; returns the size of the current record so far.
    fn step(&mut self, byte: u8) -> usize {
        if self.depth >= 2 || self.in_string {
            self.record_bytes += 1;
        }
        if self.in_string {
            match (self.escaped, byte) {
                (true, _) => self.escaped = false,
                (false, b'\\') => self.escaped = true,
                (false, b'"') => self.in_string = false,
                _ => {}
            }
            return self.record_bytes;
        }
        match byte {
            b'"' => self.in_string = true,
            b'{' | b'[' => {
                self.depth += 1;
                if self.depth == 2 {
                    self.record_bytes = 1;
                }
            }
            b'}' | b']' => self.depth = self.depth.saturating_sub(1),
            b',' if self.depth == 1 => {
                self.record += 1;
                self.record_bytes = 0;
            }
            _ => {}
        }
        self.record_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(json: &str) -> (usize, usize) {
        let mut scan = RecordScan::default();
        let largest = json.bytes().map(|b| scan.step(b)).max().unwrap_or(0);
        (scan.record, largest)
    }

    #[test]
    fn records_are_counted_and_measured_outside_strings_only() {
        // Commas, brackets and escaped quotes inside strings belong to the record.
        let (records, largest) = scan(r#"[{"a":"x,]}\"["},{"b":[1,2]},{}]"#);
        assert_eq!(records, 2);
        assert_eq!(largest, r#"{"a":"x,]}\"["}"#.len());
    }

    #[test]
    fn the_first_oversized_record_is_named_and_small_ones_pass() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("memes.json");
        let small = r#"{"sample_id":"a","ocr_text":"short"}"#;
        let large = format!(r#"{{"sample_id":"b","ocr_text":"{}"}}"#, "x".repeat(200));
        std::fs::write(&path, format!("[{small},\n{large},{small}]")).unwrap();
        let err = read_bounded(&path, 100).unwrap_err();
        assert!(
            matches!(
                &err,
                DataError::RecordTooLarge { record: RecordRef::Index(1), limit: 100, .. }
            ),
            "{err:?}"
        );
        assert_eq!(read_bounded(&path, 1000).unwrap(), std::fs::read(&path).unwrap());
    }
}
