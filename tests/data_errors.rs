//! Every way a dataset file can be wrong gives an error that names the file, the record and
//! the problem.

use std::path::PathBuf;

use memescope::data::{DataError, Dataset, DatasetFormat, RecordRef};
use tempfile::TempDir;

/// Writes `json` to a temp file and loads it; the directory lives as long as the result.
fn load(json: &str, format: DatasetFormat) -> (TempDir, PathBuf, Result<Dataset, DataError>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("memes.json");
    std::fs::write(&path, json).unwrap();
    let result = Dataset::load(&path, format);
    (dir, path, result)
}

fn load_err(json: &str, format: DatasetFormat) -> (PathBuf, DataError) {
    let (_dir, path, result) = load(json, format);
    (path, result.expect_err("the file should be rejected"))
}

fn id(sample_id: &str, index: usize) -> RecordRef {
    RecordRef::Id { sample_id: sample_id.to_string(), index }
}

#[test]
fn malformed_json_names_file_line_and_column() {
    // A missing comma after `"ocr_text": "x"` on line 3.
    let json = r#"[
  {"sample_id": "a",
   "ocr_text": "x"
   "meme_anxiety_category": "Nervousness"}
]"#;
    let (path, err) = load_err(json, DatasetFormat::Axiom);
    let DataError::MalformedJson { path: p, line, column, .. } = &err else {
        panic!("expected MalformedJson, got {err:?}");
    };
    assert_eq!((p, *line, *column), (&path, 4, 4));
    let message = err.to_string();
    println!("example message: {message}");
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("line 4, column 4"), "{message}");
}

#[test]
fn a_top_level_object_is_not_a_dataset() {
    let (path, err) = load_err(r#"{"sample_id": "a"}"#, DatasetFormat::Axiom);
    assert!(matches!(&err, DataError::NotAnArray { path: p, found: "an object" } if *p == path));
}

#[test]
fn an_empty_array_is_rejected() {
    let (_, err) = load_err("[]", DatasetFormat::Restore);
    assert!(matches!(err, DataError::Empty { .. }), "{err:?}");
}

#[test]
fn unreadable_file_names_the_path() {
    let missing = PathBuf::from("/nonexistent/memes.json");
    let err = Dataset::load(&missing, DatasetFormat::Axiom).unwrap_err();
    assert!(matches!(&err, DataError::Io { path, .. } if *path == missing), "{err:?}");
}

#[test]
fn missing_field_names_the_sample_and_the_field() {
    let json = r#"[
        {"sample_id": "TR-1", "ocr_text": "a", "meme_anxiety_category": "Nervousness"},
        {"sample_id": "TR-2", "meme_anxiety_category": "Nervousness"}
    ]"#;
    let (path, err) = load_err(json, DatasetFormat::Axiom);
    let message = err.to_string();
    match err {
        DataError::MissingField { path: p, record, field } => {
            assert_eq!((p, record, field), (path, id("TR-2", 1), "ocr_text"));
        }
        other => panic!("expected MissingField, got {other:?}"),
    }
    assert!(message.contains("\"TR-2\"") && message.contains("`ocr_text`"), "{message}");
}

#[test]
fn missing_label_field_names_the_label_field() {
    let json = r#"[{"sample_id": "TR-1", "ocr_text": "a"}]"#;
    let (_, err) = load_err(json, DatasetFormat::Restore);
    assert!(
        matches!(&err, DataError::MissingField { field: "meme_depressive_categories", .. }),
        "{err:?}"
    );
}

#[test]
fn missing_sample_id_names_the_record_index() {
    let json = r#"[
        {"sample_id": "TR-1", "ocr_text": "a", "meme_anxiety_category": "Nervousness"},
        {"sample_id": "TR-2", "ocr_text": "a", "meme_anxiety_category": "Nervousness"},
        {"ocr_text": "a", "meme_anxiety_category": "Nervousness"}
    ]"#;
    let (path, err) = load_err(json, DatasetFormat::Axiom);
    println!("example message: {err}");
    assert!(err.to_string().contains("record at index 2"), "{err}");
    match err {
        DataError::MissingField { path: p, record, field } => {
            assert_eq!((p, record, field), (path, RecordRef::Index(2), "sample_id"));
        }
        other => panic!("expected MissingField, got {other:?}"),
    }
}

#[test]
fn unknown_label_names_sample_label_and_the_known_labels() {
    let json = r#"[{"sample_id": "TR-9", "ocr_text": "a",
                    "meme_depressive_categories": ["Feeling Down", "Feeling Blue"]}]"#;
    let (path, err) = load_err(json, DatasetFormat::Restore);
    let message = err.to_string();
    println!("example message: {message}");
    match err {
        DataError::UnknownLabel { path: p, record, field, label, known } => {
            assert_eq!((p, record), (path, id("TR-9", 0)));
            assert_eq!((field, label.as_str()), ("meme_depressive_categories", "Feeling Blue"));
            assert_eq!(known.len(), 7);
        }
        other => panic!("expected UnknownLabel, got {other:?}"),
    }
    assert!(message.contains("Low Self-Esteem"), "message lists the known labels: {message}");
}

#[test]
fn a_label_of_the_other_dataset_is_unknown() {
    let json =
        r#"[{"sample_id": "TR-1", "ocr_text": "a", "meme_anxiety_category": "Feeling Down"}]"#;
    let (_, err) = load_err(json, DatasetFormat::Axiom);
    assert!(matches!(&err, DataError::UnknownLabel { label, .. } if label == "Feeling Down"));
}

#[test]
fn duplicate_sample_id_names_both_positions() {
    let json = r#"[
        {"sample_id": "TR-1", "ocr_text": "a", "meme_anxiety_category": "Nervousness"},
        {"sample_id": "TR-2", "ocr_text": "b", "meme_anxiety_category": "Nervousness"},
        {"sample_id": "TR-1", "ocr_text": "c", "meme_anxiety_category": "Restlessness"}
    ]"#;
    let (path, err) = load_err(json, DatasetFormat::Axiom);
    println!("example message: {err}");
    assert!(err.to_string().contains("index 0 and 2"), "{err}");
    match err {
        DataError::DuplicateId { path: p, sample_id, first, second } => {
            assert_eq!((p, sample_id.as_str(), first, second), (path, "TR-1", 0, 2));
        }
        other => panic!("expected DuplicateId, got {other:?}"),
    }
}

#[test]
fn empty_ocr_text_is_allowed() {
    let json = r#"[
        {"sample_id": "TR-1", "ocr_text": "", "meme_anxiety_category": "Nervousness"},
        {"sample_id": "TR-2", "ocr_text": null, "meme_anxiety_category": "Restlessness"}
    ]"#;
    let (_dir, _, result) = load(json, DatasetFormat::Axiom);
    let dataset = result.unwrap();
    assert_eq!(dataset.samples[0].ocr_text, "");
    assert_eq!(dataset.samples[1].ocr_text, "");
    assert_eq!(dataset.samples[1].labels, vec![4]);
}

#[test]
fn an_empty_single_label_is_rejected() {
    let json = r#"[{"sample_id": "TR-3", "ocr_text": "a", "meme_anxiety_category": "  "}]"#;
    let (path, err) = load_err(json, DatasetFormat::Axiom);
    println!("example message: {err}");
    match err {
        DataError::NoLabel { path: p, record, field } => {
            assert_eq!((p, record, field), (path, id("TR-3", 0), "meme_anxiety_category"));
        }
        other => panic!("expected NoLabel, got {other:?}"),
    }
}

#[test]
fn an_empty_label_list_means_no_category_applies() {
    // The official RESTORE test split has such records: none of the seven categories.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("restore.json");
    std::fs::write(
        &path,
        r#"[{"sample_id": "TR-4", "ocr_text": "a", "meme_depressive_categories": []},
            {"sample_id": "TR-5", "ocr_text": "b", "meme_depressive_categories": ["Feeling Down"]}]"#,
    )
    .unwrap();
    let data = Dataset::load(&path, DatasetFormat::Restore).unwrap();
    assert!(data.samples[0].labels.is_empty());
    assert_eq!(data.samples[1].labels.len(), 1);
    assert_eq!(data.unlabelled(), 1);
}

#[test]
fn a_label_list_of_blank_names_is_rejected() {
    let json = r#"[{"sample_id": "TR-4", "ocr_text": "a", "meme_depressive_categories": [" "]}]"#;
    let (_, err) = load_err(json, DatasetFormat::Restore);
    assert!(matches!(&err, DataError::NoLabel { record, .. } if *record == id("TR-4", 0)));
}

#[test]
fn a_wrongly_typed_field_says_what_was_expected() {
    // A RESTORE file read as AxiOM would show this: a list where one label is expected.
    let json =
        r#"[{"sample_id": "TR-5", "ocr_text": "a", "meme_anxiety_category": ["Nervousness"]}]"#;
    let (_, err) = load_err(json, DatasetFormat::Axiom);
    println!("example message: {err}");
    assert!(
        matches!(
            &err,
            DataError::WrongType {
                field: "meme_anxiety_category",
                expected: "a label name",
                found: "an array",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn a_record_that_is_not_an_object_is_named_by_index() {
    let json =
        r#"[{"sample_id": "TR-1", "ocr_text": "a", "meme_anxiety_category": "Nervousness"}, 42]"#;
    let (_, err) = load_err(json, DatasetFormat::Axiom);
    assert!(
        matches!(
            &err,
            DataError::NotAnObject { record: RecordRef::Index(1), found: "a number", .. }
        ),
        "{err:?}"
    );
}

/// Peak resident memory of this process (Linux), in bytes.
fn peak_resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[test]
fn a_four_gigabyte_text_field_fails_fast_naming_file_and_record() {
    // A sparse file: 4 GiB long on paper, a few bytes on disk. Record 1's `ocr_text` opens and
    // never closes within the file's first gigabytes.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("memes.json");
    let head = concat!(
        r#"[{"sample_id": "TR-1", "ocr_text": "a", "meme_anxiety_category": "Nervousness"},"#,
        "\n",
        r#"{"sample_id": "TR-2", "ocr_text": ""#
    );
    std::fs::write(&path, head).unwrap();
    std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(4 << 30).unwrap();

    let started = std::time::Instant::now();
    let err = Dataset::load(&path, DatasetFormat::Axiom).expect_err("the record is refused");
    let elapsed = started.elapsed();
    assert!(
        matches!(&err, DataError::RecordTooLarge { path: p, record: RecordRef::Index(1), .. } if p == &path),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("memes.json") && message.contains("index 1"), "{message}");
    // Reading stops at the limit (16 MiB), not at the end of the 4 GiB.
    assert!(elapsed.as_secs() < 10, "took {elapsed:?}");
    if let Some(peak) = peak_resident_bytes() {
        assert!(peak < 1 << 30, "peak resident memory {} MiB", peak >> 20);
    }
    // Planning runs reads the same file: it must not allocate it either.
    assert!(!memescope::data::file_has_reasoning(&path));
}
