//! Generated AxiOM-format records, for benchmarking where the real data is absent.
//!
//! Lengths vary from a few words to well past 128 tokens, like real meme captions, so that
//! batching and padding behave as they do on real data.

use anyhow::{Context, Result};
use rand::{Rng, SeedableRng};
use std::path::Path;

use crate::data::AXIOM_LABELS;

const WORDS: [&str; 24] = [
    "me",
    "when",
    "my",
    "brain",
    "at",
    "3am",
    "remembers",
    "that",
    "thing",
    "I",
    "said",
    "anxiety",
    "heart",
    "racing",
    "cannot",
    "stop",
    "worrying",
    "about",
    "tomorrow",
    "again",
    "everyone",
    "else",
    "relax",
    "doom",
];

/// Writes `count` seeded records as a JSON array to `path`.
pub fn write_axiom_records(path: &Path, count: usize, seed: u64) -> Result<()> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let records: Vec<serde_json::Value> = (0..count)
        .map(|i| {
            // Mostly short captions with a long tail, as in the real data.
            let words = if rng.random_bool(0.15) {
                rng.random_range(40..160)
            } else {
                rng.random_range(3..30)
            };
            let text: Vec<&str> =
                (0..words).map(|_| WORDS[rng.random_range(0..WORDS.len())]).collect();
            serde_json::json!({
                "sample_id": format!("GEN-{i}"),
                "ocr_text": text.join(" "),
                "meme_anxiety_category": AXIOM_LABELS[i % AXIOM_LABELS.len()],
            })
        })
        .collect();
    std::fs::write(path, serde_json::to_string(&records)?)
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Dataset, DatasetFormat};

    #[test]
    fn generated_records_load_as_axiom_with_every_class() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("gen.json");
        write_axiom_records(&path, 30, 1)?;
        let dataset = Dataset::load(&path, DatasetFormat::Axiom)?;
        assert_eq!(dataset.len(), 30);
        let mut classes: Vec<usize> = dataset.samples.iter().map(|s| s.labels[0]).collect();
        classes.sort();
        classes.dedup();
        assert_eq!(classes.len(), AXIOM_LABELS.len());
        assert!(dataset.samples.iter().all(|s| !s.ocr_text.is_empty()));
        Ok(())
    }
}
