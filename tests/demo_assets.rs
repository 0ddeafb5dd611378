//! The bundled demo dataset (`assets/demo`) is what a new user runs first: it must stay a
//! valid AxiOM file with one image per sample, except the two documented broken ones.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use memescope::data::DatasetFormat;
use serde_json::Value;

const MISSING_IMAGE: &str = "DEMO-013";
const CORRUPT_IMAGE: &str = "DEMO-077";
const REASONING_FIELDS: [&str; 4] =
    ["figurative_reasoning", "cause_effect", "figurative_understanding", "mental_state"];

fn demo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo")
}

fn records() -> Vec<Value> {
    let path = demo_dir().join("train.json");
    let text = std::fs::read_to_string(&path).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn records_are_balanced_axiom_samples_with_unique_ids() {
    let space = DatasetFormat::Axiom.label_space();
    let mut per_class = BTreeMap::<String, usize>::new();
    let mut ids = HashSet::new();
    let mut with_reasoning = 0;
    let records = records();
    for record in &records {
        let id = record["sample_id"].as_str().expect("sample_id is a string");
        assert!(ids.insert(id.to_string()), "duplicate id {id}");
        let text = record["ocr_text"].as_str().expect("ocr_text is a string");
        assert!(text.split_whitespace().count() >= 3, "{id}: caption too short: {text:?}");
        let label = record[DatasetFormat::Axiom.label_field()].as_str().unwrap();
        assert!(space.index_of(label).is_some(), "{id}: `{label}` is not an AxiOM class");
        *per_class.entry(label.to_string()).or_default() += 1;

        let present = REASONING_FIELDS.iter().filter(|f| record.get(**f).is_some()).count();
        assert!(present == 0 || present == 4, "{id}: reasoning fields come all or none");
        with_reasoning += (present == 4) as usize;
    }
    assert_eq!(per_class.len(), 6, "every class is represented: {per_class:?}");
    assert!(per_class.values().all(|&n| (30..=40).contains(&n)), "{per_class:?}");
    let share = with_reasoning as f64 / records.len() as f64;
    assert!((0.25..=0.45).contains(&share), "{with_reasoning} of {} have reasoning", records.len());
}

#[test]
fn every_sample_has_a_small_image_except_the_two_broken_on_purpose() {
    let images = demo_dir().join("images");
    let mut total_bytes = 0;
    for record in records() {
        let id = record["sample_id"].as_str().unwrap();
        let path = images.join(format!("{id}.png"));
        match id {
            MISSING_IMAGE => assert!(!path.exists(), "{id} should have no image"),
            CORRUPT_IMAGE => assert!(image::open(&path).is_err(), "{id} should not decode"),
            _ => {
                let image = image::open(&path).unwrap_or_else(|e| panic!("{id}: {e}"));
                assert_eq!((image.width(), image.height()), (160, 160), "{id}");
                let bytes = std::fs::metadata(&path).unwrap().len();
                assert!(bytes < 16_000, "{id} is {bytes} bytes");
                total_bytes += bytes;
            }
        }
    }
    assert!(total_bytes < 4_000_000, "demo images take {total_bytes} bytes");
    let files = std::fs::read_dir(&images).unwrap().count();
    assert_eq!(files, records().len() - 1, "no stray files in {}", images.display());
}

/// Outside a checkout the binary unpacks the demo it carries: the config's relative paths
/// hold from the unpacked copy, its data is the same, and its encoder comes from the hub.
#[test]
fn the_demo_carried_by_the_binary_unpacks_and_loads_from_anywhere() {
    let dir = tempfile::tempdir().unwrap();
    let path = memescope::demo::unpack(dir.path()).unwrap();
    assert_eq!(path, dir.path().join("configs/demo.toml"));
    let config = memescope::config::Config::load(&path, &[]).unwrap();
    assert_eq!(config.text_encoder.model, "sentence-transformers/all-MiniLM-L6-v2");
    assert_eq!(config.data.train, dir.path().join("configs/../assets/demo/train.json"));
    let unpacked = std::fs::read(&config.data.train).unwrap();
    assert_eq!(unpacked, std::fs::read(demo_dir().join("train.json")).unwrap());
    let dataset = memescope::data::Dataset::load(&config.data.train, DatasetFormat::Axiom).unwrap();
    let images = config.data.images.as_deref().unwrap();
    let report = memescope::data::resolve_images(images, &dataset.samples);
    assert_eq!((report.missing(), report.undecodable()), (1, 1), "{}", report.summary());
    // A second unpack (a second first run) keeps the files and gives the same config.
    assert_eq!(memescope::demo::unpack(dir.path()).unwrap(), path);
}
