//! OCR with the real Tesseract binary (installed by scripts/setup.sh) on captions rendered
//! here, so the expected text is known exactly.

mod common;

use std::path::{Path, PathBuf};

use image::{Rgb, RgbImage};
use memescope::ocr::caption::{draw_meme_caption, load_font, split_top_bottom, CaptionStyle};
use memescope::ocr::{OcrEngine, Tesseract};

use common::{assert_words_read, words};

fn font_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/fonts/DejaVuSans-Bold.ttf")
}

fn tesseract() -> Tesseract {
    Tesseract::new().unwrap_or_else(|e| panic!("{e:#} (scripts/setup.sh installs it)"))
}

/// Renders `caption` meme-style (top and bottom) over `background` and saves it as PNG.
fn render(path: &Path, caption: &str, background: RgbImage, style: &CaptionStyle) {
    let font = load_font(&font_path()).unwrap();
    let mut image = background;
    let (top, bottom) = split_top_bottom(caption);
    draw_meme_caption(&mut image, &font, &top, &bottom, style);
    image.save(path).unwrap();
}

/// A busy background: colour gradient plus speckle, like a photo behind a caption.
fn noisy_gradient(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        let speckle = ((x * 7919 + y * 104_729) % 41) as u8;
        Rgb([40 + (x * 150 / width) as u8 + speckle, 70 + speckle, 60 + (y * 140 / height) as u8])
    })
}

#[test]
fn reads_a_white_meme_caption_over_a_busy_background() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("deadline.png");
    let caption = "WHEN THE DEADLINE IS TOMORROW";
    let style = CaptionStyle { max_px: 48.0, outline_px: 2, ..CaptionStyle::default() };
    render(&path, caption, noisy_gradient(480, 240), &style);

    let text = tesseract().recognize(&path).unwrap();
    assert_words_read(caption, &text);
    assert!(!text.contains('\n'), "lines are joined into one text: {text:?}");
}

#[test]
fn reads_a_small_meme_with_a_thin_outline() {
    // Low-resolution memes are the common case; the outline then touches the letters,
    // which is where reading only the white fill pays off.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("marathon.png");
    let caption = "me pretending to be calm while my heart is running a marathon";
    render(&path, caption, noisy_gradient(160, 160), &CaptionStyle::default());

    assert_words_read(caption, &tesseract().recognize(&path).unwrap());
}

#[test]
fn reads_dark_text_on_a_light_background() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("screenshot.png");
    let caption = "me at 3am replaying a conversation from 2014";
    let style = CaptionStyle {
        max_px: 30.0,
        outline_px: 0,
        fill: Rgb([20, 20, 20]),
        ..CaptionStyle::default()
    };
    render(&path, caption, RgbImage::from_pixel(400, 200, Rgb([245, 245, 240])), &style);

    assert_words_read(caption, &tesseract().recognize(&path).unwrap());
}

#[test]
fn reads_most_words_of_the_bundled_demo_memes() {
    // 160-pixel memes with 9-20 px captions: small enough that single letters go wrong
    // now and then, so the bar is a share of the words, not all of them.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo");
    let records: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(root.join("train.json")).unwrap()).unwrap();
    let engine = tesseract();
    let (mut found, mut total) = (0, 0);
    for record in records.iter().take(8) {
        let id = record["sample_id"].as_str().unwrap();
        let text = engine.recognize(&root.join(format!("images/{id}.png"))).unwrap();
        let read = words(&text);
        let expected = words(record["ocr_text"].as_str().unwrap());
        found += expected.iter().filter(|w| read.contains(w)).count();
        total += expected.len();
    }
    let recall = found as f64 / total as f64;
    assert!(recall >= 0.9, "only {found} of {total} caption words recognised");
}

#[test]
fn a_corrupt_image_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("TR-42.png");
    // A PNG signature followed by garbage: the extension and magic bytes both lie.
    std::fs::write(&path, b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDRgarbage").unwrap();

    let error = format!("{:#}", tesseract().recognize(&path).unwrap_err());
    assert!(error.contains(&path.display().to_string()), "{error}");
}

#[test]
fn a_language_without_data_is_refused_up_front() {
    let error = format!("{:#}", Tesseract::with_options("tesseract", "eng+zzz", 6).unwrap_err());
    assert!(error.contains("no `zzz` language data"), "{error}");
    assert!(error.contains("tesseract-ocr-zzz"), "{error}");
}

#[test]
fn the_engine_name_carries_the_version_and_settings() {
    let name = tesseract().name().to_string();
    assert!(name.starts_with("tesseract-"), "{name}");
    assert!(name.contains("lang=eng") && name.contains("psm=6"), "{name}");
}
