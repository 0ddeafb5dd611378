//! Shared fixtures for integration tests: a small, learnable synthetic meme dataset
//! (text + images) in the real AxiOM / RESTORE formats, and configs that use tiny random
//! encoders written by `memescope::testing`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use image::{Rgb, RgbImage};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use memescope::data::{AXIOM_LABELS, RESTORE_LABELS};

/// Words that mark each class; every caption mixes two of its class's words with filler.
const CLASS_WORDS: [[&str; 3]; 7] = [
    ["heart", "racing", "shaking"],
    ["spiral", "cannot", "stop"],
    ["what", "if", "tomorrow"],
    ["relax", "tense", "beach"],
    ["pacing", "fidget", "legs"],
    ["doom", "end", "world"],
    ["self", "hurt", "scar"],
];
const FILLER: [&str; 8] = ["me", "when", "the", "a", "my", "is", "so", "again"];

/// Hue of each class's images, so the image stream carries signal too.
const CLASS_COLOURS: [[u8; 3]; 7] = [
    [220, 40, 40],
    [40, 200, 40],
    [40, 40, 220],
    [220, 220, 40],
    [220, 40, 220],
    [40, 220, 220],
    [120, 120, 120],
];

pub struct Synthetic {
    pub dir: PathBuf,
    /// Three of every four records.
    pub train: PathBuf,
    /// The fourth.
    pub validation: PathBuf,
    pub images: PathBuf,
}

fn write_split(dir: &Path, images: PathBuf, records: Vec<serde_json::Value>) -> Synthetic {
    let (train, validation): (Vec<_>, Vec<_>) =
        records.into_iter().enumerate().partition(|(i, _)| i % 4 != 3);
    let write = |name: &str, rows: Vec<(usize, serde_json::Value)>| {
        let rows: Vec<_> = rows.into_iter().map(|(_, r)| r).collect();
        let path = dir.join(name);
        std::fs::write(&path, serde_json::to_string_pretty(&rows).unwrap()).unwrap();
        path
    };
    Synthetic {
        dir: dir.to_path_buf(),
        train: write("train.json", train),
        validation: write("val.json", validation),
        images,
    }
}

fn caption(rng: &mut impl Rng, class: usize) -> String {
    let words = CLASS_WORDS[class];
    let mut caption = vec![
        FILLER[rng.random_range(0..FILLER.len())],
        words[rng.random_range(0..3)],
        FILLER[rng.random_range(0..FILLER.len())],
        words[rng.random_range(0..3)],
    ];
    if rng.random_bool(0.5) {
        caption.push(FILLER[rng.random_range(0..FILLER.len())]);
    }
    caption.join(" ")
}

fn write_image(path: &Path, rng: &mut impl Rng, class: usize) {
    let colour = CLASS_COLOURS[class];
    let image = RgbImage::from_fn(32, 32, |_, _| {
        let mut jitter = |c: u8| c.saturating_add(rng.random_range(0..30)).saturating_sub(15);
        Rgb([jitter(colour[0]), jitter(colour[1]), jitter(colour[2])])
    });
    image.save(path).unwrap();
}

/// `per_class` samples of each of `classes` classes, each with a PNG of its class's colour;
/// `record(rng, class, id)` writes the JSON record in the dataset's format.
fn generate(
    dir: &Path,
    classes: usize,
    per_class: usize,
    seed: u64,
    mut record: impl FnMut(&mut StdRng, usize, String) -> serde_json::Value,
) -> Synthetic {
    let mut rng = StdRng::seed_from_u64(seed);
    let images = dir.join("images");
    std::fs::create_dir_all(&images).unwrap();
    let mut records = Vec::new();
    for class in 0..classes {
        for i in 0..per_class {
            let id = format!("s{class}_{i}");
            write_image(&images.join(format!("{id}.png")), &mut rng, class);
            records.push(record(&mut rng, class, id));
        }
    }
    write_split(dir, images, records)
}

/// `per_class` AxiOM-format samples of each class, with a PNG per sample.
pub fn axiom(dir: &Path, per_class: usize, seed: u64) -> Synthetic {
    generate(dir, AXIOM_LABELS.len(), per_class, seed, |rng, class, id| {
        serde_json::json!({
            "sample_id": id,
            "ocr_text": caption(rng, class),
            "meme_anxiety_category": AXIOM_LABELS[class],
        })
    })
}

/// RESTORE-format samples with one or two labels each (the second one drawn at random).
pub fn restore(dir: &Path, per_class: usize, seed: u64) -> Synthetic {
    let n = RESTORE_LABELS.len();
    generate(dir, n, per_class, seed, |rng, class, id| {
        let mut labels = vec![RESTORE_LABELS[class]];
        let mut text = caption(rng, class);
        if rng.random_bool(0.3) {
            let other = (class + 1 + rng.random_range(0..n - 1)) % n;
            labels.push(RESTORE_LABELS[other]);
            text = format!("{text} {}", caption(rng, other));
        }
        serde_json::json!({
            "sample_id": id,
            "ocr_text": text,
            "meme_depressive_categories": labels,
        })
    })
}

/// Tiny random BERT and CLIP checkpoints under `dir`, through the same writers as the
/// encoder tests use.
pub fn tiny_encoders(dir: &Path) -> (PathBuf, PathBuf) {
    let bert = dir.join("tiny-bert");
    let clip = dir.join("tiny-clip");
    memescope::testing::write_tiny_bert(&bert).unwrap();
    memescope::testing::write_tiny_clip(&clip).unwrap();
    (bert, clip)
}

/// A config over synthetic data and tiny encoders, with runs and cache inside `dir`.
pub fn config_toml(data: &Synthetic, format: &str, bert: &Path, clip: &Path, dir: &Path) -> String {
    format!(
        r#"
[data]
format = "{format}"
train = "{train}"
validation = "{validation}"
images = "{images}"

[text_encoder]
model = "{bert}"
max_length = 16
layers = 2
pooling = "mean"

[vision_encoder]
model = "{clip}"
layers = 2

[model]
fusion_dim = 32
heads = 2
experts = 3
dropout = 0.0

[train]
epochs = 25
batch_size = 16
lr = 3e-3
warmup = 0.05
patience = 0
seed = 3

[paths]
runs = "{runs}"
cache = "{cache}"
"#,
        train = data.train.display(),
        validation = data.validation.display(),
        images = data.images.display(),
        bert = bert.display(),
        clip = clip.display(),
        runs = dir.join("runs").display(),
        cache = dir.join("cache").display(),
    )
}

/// A temporary directory holding synthetic `format` data (`per_class` memes of each label,
/// drawn from `seed`), tiny random BERT and CLIP checkpoints, and the config of a run over
/// them; the directory lives as long as the returned guard.
pub fn synthetic_run(
    format: &str,
    per_class: usize,
    seed: u64,
) -> (tempfile::TempDir, Synthetic, memescope::config::Config) {
    let dir = tempfile::tempdir().unwrap();
    let data = match format {
        "axiom" => axiom(&dir.path().join("data"), per_class, seed),
        _ => restore(&dir.path().join("data"), per_class, seed),
    };
    let (bert, clip) = tiny_encoders(dir.path());
    let config = memescope::config::Config::from_toml_str(&config_toml(
        &data,
        format,
        &bert,
        &clip,
        dir.path(),
    ))
    .unwrap();
    (dir, data, config)
}

/// Lower-cased words without punctuation.
pub fn words(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|w| w.chars().filter(|c| c.is_alphanumeric()).collect::<String>().to_lowercase())
        .filter(|w| !w.is_empty())
        .collect()
}

/// Asserts every word of `expected` is among the recognised words, ignoring case and
/// punctuation (exact spacing and stray marks vary between Tesseract versions).
pub fn assert_words_read(expected: &str, recognised: &str) {
    let read = words(recognised);
    for word in words(expected) {
        assert!(read.contains(&word), "`{word}` not recognised; tesseract read `{recognised}`");
    }
}

/// `memescope eval` of the finished run in `run_dir` on `data`'s validation file gives
/// exactly the metrics its `report.json` recorded during training.
pub fn assert_eval_reproduces_report(run_dir: &Path, data: &Synthetic) {
    let report: memescope::runs::Report =
        memescope::runs::read_json(&run_dir.join("report.json")).unwrap();
    let metrics = memescope::train::evaluate_runs(
        &[run_dir.to_path_buf()],
        &data.validation,
        Some(&data.images),
    )
    .unwrap()
    .metrics;
    assert_eq!(metrics.macro_f1, report.macro_f1);
    assert_eq!(metrics.weighted_f1, report.weighted_f1);
    assert_eq!(metrics.per_class, report.per_class);
}
