//! `memescope predict` on real image files (captions rendered here, read back by the real
//! Tesseract), and training data whose text comes from OCR of its images.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use image::{Rgb, RgbImage};
use memescope::config::Config;
use memescope::data::AXIOM_LABELS;
use memescope::events::VecSink;
use memescope::ocr::caption::{draw_meme_caption, load_font, split_top_bottom, CaptionStyle};
use memescope::ocr::{OcrPolicy, Tesseract};
use memescope::predict::{expand_inputs, predict_images};
use memescope::train::{self, load_run_ensemble, StopFlag};

use common::assert_words_read;

/// Renders `caption` meme-style on a plain dark background and saves it as PNG.
fn render(path: &Path, caption: &str) {
    let font =
        load_font(&Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/fonts/DejaVuSans-Bold.ttf"))
            .unwrap();
    let mut image = RgbImage::from_pixel(400, 200, Rgb([40, 60, 90]));
    let (top, bottom) = split_top_bottom(caption);
    let style = CaptionStyle { max_px: 40.0, outline_px: 2, ..CaptionStyle::default() };
    draw_meme_caption(&mut image, &font, &top, &bottom, &style);
    image.save(path).unwrap();
}

/// A few epochs of a single-label run (text + images) on synthetic AxiOM memes.
fn tiny_run(dir: &Path, overrides: &[(&str, &str)]) -> PathBuf {
    let data = common::axiom(&dir.join("data"), 4, 7);
    let (bert, clip) = common::tiny_encoders(dir);
    let mut toml: toml::Table =
        toml::from_str(&common::config_toml(&data, "axiom", &bert, &clip, dir)).unwrap();
    toml["train"].as_table_mut().unwrap().insert("epochs".into(), 2.into());
    for (key, value) in overrides {
        memescope::config::apply_override(&mut toml, &format!("{key}={value}")).unwrap();
    }
    let config = Config::from_toml_str(&toml.to_string()).unwrap();
    train::run(config, &mut VecSink::default(), &StopFlag::default()).unwrap().run_dir
}

/// Two captioned memes and one corrupt file (a PNG signature followed by garbage).
fn memes_folder(dir: &Path) -> (PathBuf, [&'static str; 2]) {
    let folder = dir.join("memes");
    std::fs::create_dir_all(&folder).unwrap();
    let captions = ["MY HEART IS RACING AGAIN", "THE END OF THE WORLD"];
    render(&folder.join("racing.png"), captions[0]);
    render(&folder.join("doom.jpg"), captions[1]);
    std::fs::write(folder.join("broken.png"), b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDRgarbage")
        .unwrap();
    (folder, captions)
}

#[test]
fn predicts_a_folder_skipping_the_corrupt_file() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = tiny_run(dir.path(), &[]);
    let (folder, captions) = memes_folder(dir.path());

    // The library: the corrupt file is skipped with its reason, the others are labelled.
    let trained = load_run_ensemble(std::slice::from_ref(&run_dir)).unwrap();
    assert!(trained.members[0].reads_text() && trained.members[0].reads_images());
    let (images, skipped) = expand_inputs(std::slice::from_ref(&folder));
    assert!(skipped.is_empty());
    let engine = Tesseract::new().unwrap();
    let mut log = |_| {};
    let outcome = predict_images(&trained, &images, Some(&engine), &mut log).unwrap();
    assert_eq!(outcome.skipped.len(), 1, "{:?}", outcome.skipped);
    assert_eq!(outcome.skipped[0].path, folder.join("broken.png"));
    assert!(outcome.skipped[0].reason.contains("not a readable image"));
    let paths: Vec<_> = outcome.predictions.iter().map(|p| p.path.clone()).collect();
    assert_eq!(paths, [folder.join("doom.jpg"), folder.join("racing.png")]);
    for (prediction, caption) in outcome.predictions.iter().zip([captions[1], captions[0]]) {
        let text = prediction.text.as_deref().unwrap();
        assert_words_read(caption, text);
        let labels: Vec<&str> = prediction.probabilities.iter().map(|(l, _)| l.as_str()).collect();
        assert_eq!(labels, AXIOM_LABELS);
        let sum: f32 = prediction.probabilities.iter().map(|(_, p)| p).sum();
        assert!((sum - 1.0).abs() < 1e-4, "single-label probabilities sum to {sum}");
        // Single-label: exactly the most probable label is decided.
        let best = prediction.probabilities.iter().max_by(|a, b| a.1.total_cmp(&b.1)).unwrap();
        assert_eq!(prediction.labels, std::slice::from_ref(&best.0));
    }

    // The command: JSON on stdout, the skipped file named on stderr, success.
    let output = Command::new(env!("CARGO_BIN_EXE_memescope"))
        .args(["predict", "--json", "--run"])
        .arg(&run_dir)
        .arg(&folder)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("broken.png") && stderr.contains("not a readable image"), "{stderr}");
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let rows = json.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for (row, prediction) in rows.iter().zip(&outcome.predictions) {
        assert_eq!(row["path"].as_str().unwrap(), prediction.path.to_str().unwrap());
        assert_eq!(row["text"].as_str(), prediction.text.as_deref(), "read from the OCR cache");
        let probabilities = row["probabilities"].as_object().unwrap();
        assert_eq!(probabilities.len(), AXIOM_LABELS.len());
        let sum: f64 = probabilities.values().map(|p| p.as_f64().unwrap()).sum();
        assert!((sum - 1.0).abs() < 1e-4, "{sum}");
        assert_eq!(row["labels"].as_array().unwrap().len(), 1);
    }

    // Nothing to label at all is a failure.
    let output = Command::new(env!("CARGO_BIN_EXE_memescope"))
        .args(["predict", "--run"])
        .arg(&run_dir)
        .arg(folder.join("broken.png"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("no image was labelled"));
}

#[test]
fn a_run_without_images_predicts_from_ocr_text_alone() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = tiny_run(dir.path(), &[("ablation.image", "false")]);
    let (folder, _) = memes_folder(dir.path());
    let trained = load_run_ensemble(std::slice::from_ref(&run_dir)).unwrap();
    assert!(trained.reads_text() && !trained.members[0].reads_images());
    let images = [folder.join("racing.png")];
    let engine = Tesseract::new().unwrap();
    let outcome = predict_images(&trained, &images, Some(&engine), &mut |_| {}).unwrap();
    assert_eq!(outcome.predictions.len(), 1);
    // Without text the model has no input at all, so it must have had the OCR text.
    assert_words_read("MY HEART IS RACING AGAIN", outcome.predictions[0].text.as_deref().unwrap());
}

#[test]
fn an_ensemble_of_runs_labels_memes_with_their_mean_probabilities() {
    // One run reads images and text, the other text alone: each member must be given the
    // features it was trained on.
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let with_images = tiny_run(&a, &[]);
    let text_only = tiny_run(&b, &[("ablation.image", "false"), ("train.seed", "5")]);
    let (folder, _) = memes_folder(dir.path());
    let images = [folder.join("racing.png"), folder.join("doom.jpg")];
    let engine = Tesseract::new().unwrap();
    let predict = |runs: &[PathBuf]| {
        let ensemble = load_run_ensemble(runs).unwrap();
        predict_images(&ensemble, &images, Some(&engine), &mut |_| {}).unwrap().predictions
    };
    let first = predict(std::slice::from_ref(&with_images));
    let second = predict(std::slice::from_ref(&text_only));
    let both = predict(&[with_images, text_only]);
    assert_eq!(both.len(), 2);
    for ((mean, x), y) in both.iter().zip(&first).zip(&second) {
        assert_eq!((&mean.path, &mean.text), (&x.path, &x.text));
        let pairs = mean.probabilities.iter().zip(&x.probabilities).zip(&y.probabilities);
        for (((label, p), (_, px)), (_, py)) in pairs {
            assert!((p - (px + py) / 2.0).abs() < 1e-6, "{label}: {p} from {px} and {py}");
        }
        // Single-label: the most probable label of the mean is decided.
        let best = mean.probabilities.iter().max_by(|l, r| l.1.total_cmp(&r.1)).unwrap();
        assert_eq!(mean.labels.as_slice(), std::slice::from_ref(&best.0));
    }
    assert_ne!(first[0].probabilities, second[0].probabilities, "the members should differ");
}

#[test]
fn training_records_without_text_get_it_by_ocr() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    std::fs::create_dir_all(&images).unwrap();
    let captions = ["MY HEART IS RACING", "CANNOT STOP THE SPIRAL", "THE END OF THE WORLD"];
    let mut records = Vec::new();
    for (i, caption) in captions.iter().enumerate() {
        render(&images.join(format!("m{i}.png")), caption);
        records.push(serde_json::json!({"sample_id": format!("m{i}"),
            "meme_anxiety_category": AXIOM_LABELS[i]}));
    }
    // A record that has its text keeps it, even though its image says something else.
    render(&images.join("kept.png"), "SOMETHING ELSE ENTIRELY");
    records.push(serde_json::json!({"sample_id": "kept", "ocr_text": "dataset text",
        "meme_anxiety_category": AXIOM_LABELS[3]}));
    let train_path = dir.path().join("train.json");
    std::fs::write(&train_path, serde_json::to_string(&records).unwrap()).unwrap();

    let (bert, _) = common::tiny_encoders(dir.path());
    let text = format!(
        r#"
[data]
format = "axiom"
train = "{train}"
validation = "{train}"
images = "{images}"
ocr = "missing"
[text_encoder]
model = "{bert}"
max_length = 16
layers = 2
[model]
fusion_dim = 32
heads = 2
[paths]
cache = "{cache}"
"#,
        train = train_path.display(),
        images = images.display(),
        bert = bert.display(),
        cache = dir.path().join("cache").display(),
    );
    let config = Config::from_toml_str(&text).unwrap();
    let device = candle_core::Device::Cpu;
    let mut events = Vec::new();
    let prepared = train::prepare(&config, &device, &mut |e| events.push(e)).unwrap();
    let texts: Vec<&str> =
        prepared.train.dataset.samples.iter().map(|s| s.ocr_text.as_str()).collect();
    for (text, caption) in texts.iter().zip(captions) {
        assert_words_read(caption, text);
    }
    assert_eq!(texts[3], "dataset text");
    let ocr_stages: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            memescope::events::TrainEvent::Stage { name, detail } if name == "ocr" => {
                Some(detail.clone())
            }
            _ => None,
        })
        .collect();
    assert_eq!(ocr_stages.len(), 2, "train and validation files: {ocr_stages:?}");
    assert!(ocr_stages[0].contains("3 texts by OCR (3 read, 0 cached)"), "{}", ocr_stages[0]);
    assert!(ocr_stages[1].contains("(0 read, 3 cached)"), "{}", ocr_stages[1]);

    // Without OCR, or without images to read, a record without text stays an error.
    for (policy, images_dir) in
        [(OcrPolicy::Never, Some(images.clone())), (OcrPolicy::Missing, None)]
    {
        let mut strict = config.clone();
        strict.data.ocr = policy;
        strict.data.images = images_dir;
        let error = train::prepare(&strict, &device, &mut |_| {}).err().unwrap();
        let message = format!("{error:#}");
        assert!(message.contains("record \"m0\" (index 0) has no field `ocr_text`"), "{message}");
    }
}
