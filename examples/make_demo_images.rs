//! Regenerates the bundled demo memes, `assets/demo/images/<sample_id>.png`, from
//! `assets/demo/train.json`:
//!
//! ```text
//! cargo run --example make_demo_images [-- <train.json> <images dir>]
//! ```
//!
//! Each image is the sample's caption in meme style (white, outlined, top and bottom) over
//! a generated background whose palette and shapes follow the sample's class most of the
//! time, so the image side of a model has a weak, noisy signal to find. Everything is
//! seeded by the sample id: the same dataset always gives byte-identical images.
//! Two samples are broken on purpose (see `assets/demo/README.md`): one image is left out
//! and one is written as a corrupt PNG, so the demo shows how missing images are masked.

use std::f32::consts::TAU;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use image::codecs::png::{CompressionType, FilterType as PngFilter, PngEncoder};
use image::{Rgb, RgbImage};
use memescope::data::DatasetFormat;
use memescope::ocr::caption::{draw_meme_caption, load_font, split_top_bottom, CaptionStyle};
use serde::Deserialize;
use sha2::{Digest, Sha256};

const SIZE: u32 = 160;
/// The sample whose image is deliberately absent.
const MISSING_IMAGE: &str = "DEMO-013";
/// The sample whose image is deliberately an undecodable PNG.
const CORRUPT_IMAGE: &str = "DEMO-077";
/// How often a sample borrows another class's look, so images alone stay ambiguous.
const OFF_CLASS_RATE: f64 = 0.2;

#[derive(Deserialize)]
struct Record {
    sample_id: String,
    ocr_text: String,
    meme_anxiety_category: String,
}

fn main() -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut args = std::env::args().skip(1);
    let dataset = args.next().map(PathBuf::from).unwrap_or(root.join("assets/demo/train.json"));
    let out_dir = args.next().map(PathBuf::from).unwrap_or(root.join("assets/demo/images"));
    let font = load_font(&root.join("assets/fonts/DejaVuSans-Bold.ttf"))?;

    let text = std::fs::read_to_string(&dataset)
        .with_context(|| format!("reading {}", dataset.display()))?;
    let records: Vec<Record> =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", dataset.display()))?;
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;

    // Each class (by its index in the AxiOM label space) has its own look; see `background`.
    let space = DatasetFormat::Axiom.label_space();
    let mut written = 0;
    for record in &records {
        let Some(class) = space.index_of(&record.meme_anxiety_category) else {
            bail!(
                "{}: sample {} has unknown class `{}`",
                dataset.display(),
                record.sample_id,
                record.meme_anxiety_category
            );
        };
        let path = out_dir.join(format!("{}.png", record.sample_id));
        match record.sample_id.as_str() {
            MISSING_IMAGE => remove_if_present(&path)?,
            // A valid PNG signature and the start of a header chunk, then garbage: it looks
            // like a PNG to anything that sniffs the first bytes, but no decoder can read it.
            CORRUPT_IMAGE => std::fs::write(&path, b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDRtruncated")
                .with_context(|| format!("writing {}", path.display()))?,
            _ => {
                let mut rng = SplitMix64::from_id(&record.sample_id);
                let look = if rng.unit() < OFF_CLASS_RATE { rng.below(space.len()) } else { class };
                let mut image = background(look, &mut rng);
                let (top, bottom) = split_top_bottom(&record.ocr_text);
                draw_meme_caption(&mut image, &font, &top, &bottom, &caption_style());
                posterize(&mut image);
                save_png(&image, &path)?;
                written += 1;
            }
        }
    }
    println!("wrote {written} images to {} ({} records)", out_dir.display(), records.len());
    Ok(())
}

fn caption_style() -> CaptionStyle {
    CaptionStyle { max_px: 20.0, min_px: 9.0, outline_px: 1, margin_px: 4, ..Default::default() }
}

/// Keeps 16 levels per channel, like a meme saved one time too many. It also makes the
/// anti-aliased caption edges compress: the images stay around 10 KB instead of 20 KB.
fn posterize(image: &mut RgbImage) {
    for pixel in image.pixels_mut() {
        for c in 0..3 {
            pixel[c] &= 0xF0;
        }
    }
}

/// Writes with the strongest compression: the demo images are committed to the repository.
fn save_png(image: &RgbImage, path: &Path) -> Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("writing {}", path.display()))?;
    let encoder = PngEncoder::new_with_quality(
        std::io::BufWriter::new(file),
        CompressionType::Best,
        PngFilter::Adaptive,
    );
    image.write_with_encoder(encoder).with_context(|| format!("writing {}", path.display()))
}

fn remove_if_present(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// A class's look (by AxiOM label index): a vertical colour gradient and a shape motif.
fn background(class: usize, rng: &mut SplitMix64) -> RgbImage {
    let (top, bottom) = match class {
        0 => ([236, 176, 60], [196, 110, 40]), // nervousness: jittery amber
        1 => ([104, 64, 150], [52, 30, 90]),   // lack of worry control: purple spiral
        2 => ([96, 112, 136], [60, 70, 92]),   // excessive worry: cluttered slate
        3 => ([70, 160, 160], [30, 96, 120]),  // difficulty relaxing: teal water
        4 => ([200, 60, 110], [130, 30, 80]),  // restlessness: magenta zig-zag
        _ => ([40, 36, 44], [150, 50, 30]),    // impending doom: dark, red horizon
    };
    let jitter: [i32; 3] = [rng.range(-18, 18), rng.range(-18, 18), rng.range(-18, 18)];
    let mut image = RgbImage::from_fn(SIZE, SIZE, |_, y| {
        let t = y as f32 / (SIZE - 1) as f32;
        Rgb(std::array::from_fn(|c| {
            let v = top[c] as f32 * (1.0 - t) + bottom[c] as f32 * t;
            (v as i32 + jitter[c]).clamp(0, 255) as u8
        }))
    });
    match class {
        0 => bubbles(&mut image, rng),
        1 => spiral(&mut image, rng),
        2 => clutter(&mut image, rng),
        3 => waves(&mut image, rng),
        4 => zigzag(&mut image, rng),
        _ => storm(&mut image, rng),
    }
    speckle(&mut image, rng);
    image
}

/// Small scattered circles, lighter than the background.
fn bubbles(image: &mut RgbImage, rng: &mut SplitMix64) {
    for _ in 0..rng.range(14, 24) {
        let (cx, cy, r) = (rng.range(0, 160), rng.range(0, 160), rng.range(3, 9));
        paint(image, Rgb([255, 224, 140]), 0.55, |x, y| (x - cx).pow(2) + (y - cy).pow(2) <= r * r);
    }
}

/// Concentric rings around an off-centre point.
fn spiral(image: &mut RgbImage, rng: &mut SplitMix64) {
    let (cx, cy) = (rng.range(50, 110) as f32, rng.range(50, 110) as f32);
    let phase = rng.unit() as f32 * 12.0;
    paint(image, Rgb([190, 150, 230]), 0.45, |x, y| {
        let (dx, dy) = (x as f32 - cx, y as f32 - cy);
        let ring = (dx * dx + dy * dy).sqrt() + dy.atan2(dx) * 4.0 + phase;
        ring.rem_euclid(12.0) < 3.0
    });
}

/// Many overlapping rectangle outlines, like a desk covered in notes.
fn clutter(image: &mut RgbImage, rng: &mut SplitMix64) {
    for _ in 0..rng.range(10, 16) {
        let (x0, y0) = (rng.range(0, 140), rng.range(0, 140));
        let (x1, y1) = (x0 + rng.range(14, 40), y0 + rng.range(10, 30));
        paint(image, Rgb([200, 210, 225]), 0.5, |x, y| {
            let inside = x >= x0 && x <= x1 && y >= y0 && y <= y1;
            inside && (x - x0 < 2 || x1 - x < 2 || y - y0 < 2 || y1 - y < 2)
        });
    }
}

/// Gentle horizontal waves.
fn waves(image: &mut RgbImage, rng: &mut SplitMix64) {
    let (phase, period) = (rng.unit() as f32 * TAU, rng.range(30, 50) as f32);
    paint(image, Rgb([170, 230, 220]), 0.4, |x, y| {
        let crest = (x as f32 / period * TAU + phase).sin() * 4.0;
        (y as f32 + crest).rem_euclid(22.0) < 3.0
    });
}

/// Sharp diagonal zig-zag stripes.
fn zigzag(image: &mut RgbImage, rng: &mut SplitMix64) {
    let offset = rng.range(0, 24);
    paint(image, Rgb([255, 170, 200]), 0.45, |x, y| {
        let tooth = (x % 16 - 8).abs();
        (y + tooth * 2 + offset).rem_euclid(24) < 4
    });
}

/// A large dark disc low in the frame, like a cloud or a looming shape.
fn storm(image: &mut RgbImage, rng: &mut SplitMix64) {
    let (cx, cy, r) = (rng.range(40, 120), rng.range(90, 130), rng.range(40, 60));
    paint(image, Rgb([10, 8, 12]), 0.75, |x, y| (x - cx).pow(2) + (y - cy).pow(2) <= r * r);
}

/// Blends `colour` at `alpha` into every pixel where `inside(x, y)` holds.
fn paint(image: &mut RgbImage, colour: Rgb<u8>, alpha: f32, inside: impl Fn(i32, i32) -> bool) {
    for (x, y, pixel) in image.enumerate_pixels_mut() {
        if inside(x as i32, y as i32) {
            for c in 0..3 {
                pixel[c] = (pixel[c] as f32 * (1.0 - alpha) + colour[c] as f32 * alpha) as u8;
            }
        }
    }
}

/// Sparse grey speckle, as in a re-compressed photo (sparse: dense noise would not
/// compress, and the images are committed).
fn speckle(image: &mut RgbImage, rng: &mut SplitMix64) {
    for pixel in image.pixels_mut() {
        if rng.unit() < 0.04 {
            let delta = rng.range(-24, 24);
            for c in 0..3 {
                pixel[c] = (pixel[c] as i32 + delta).clamp(0, 255) as u8;
            }
        }
    }
}

/// A tiny, fixed pseudo-random generator: unlike `rand`'s generators it is guaranteed to
/// produce the same stream forever, which keeps regenerated images byte-identical.
struct SplitMix64(u64);

impl SplitMix64 {
    fn from_id(id: &str) -> Self {
        let digest = Sha256::digest(id.as_bytes());
        Self(u64::from_le_bytes(digest[..8].try_into().expect("sha256 has 32 bytes")))
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [0, n).
    fn below(&mut self, n: usize) -> usize {
        (self.unit() * n as f64) as usize
    }

    /// Uniform in [lo, hi).
    fn range(&mut self, lo: i32, hi: i32) -> i32 {
        lo + self.below((hi - lo) as usize) as i32
    }
}
