//! Turning a meme into the black-on-white pictures Tesseract reads best.
//!
//! Tesseract expects dark text on a light page with letters at least ~20 pixels tall.
//! Memes break both: captions are white with a dark outline over a photo, and images are
//! often small. So every image is enlarged, and read twice: once as plain grayscale
//! (dark text on light backgrounds, e.g. screenshots) and once as a mask of its
//! near-white pixels (the classic white caption), keeping the more confident reading.

use std::io::Cursor;
use std::path::Path;

use anyhow::{Context, Result};
use image::imageops::FilterType;
use image::{DynamicImage, GrayImage, ImageFormat, Luma, RgbImage};

/// Bump when the preprocessing changes, so cached text from the old one is not reused.
pub(super) const PREPARE_VERSION: u32 = 1;

/// Images whose shorter side is below this are enlarged (by a whole factor, up to 4×).
const TARGET_SHORT_SIDE: u32 = 480;
const MAX_UPSCALE: u32 = 4;
/// A pixel is caption-white when all its channels are at least this bright: the
/// anti-aliased rim between fill and outline is darker and belongs to the outline.
const WHITE_THRESHOLD: u8 = 170;

/// The two readings of one image, PNG-encoded for Tesseract's stdin.
#[derive(Debug)]
pub(super) struct Candidates {
    pub grayscale: Vec<u8>,
    pub white_caption: Vec<u8>,
}

/// Decodes `path` and prepares both readings. Errors name the file.
pub(super) fn prepare(path: &Path) -> Result<Candidates> {
    let image = image::ImageReader::open(path)
        .with_context(|| format!("cannot open image {}", path.display()))?
        .with_guessed_format()
        .with_context(|| format!("cannot read image {}", path.display()))?
        .decode()
        .with_context(|| format!("cannot decode image {}", path.display()))?;
    let rgb = image.to_rgb8();
    let scale = upscale_factor(rgb.width().min(rgb.height()));
    let grayscale = enlarge(DynamicImage::ImageRgb8(rgb.clone()).to_luma8(), scale);
    let white_caption = enlarge(white_mask(&rgb), scale);
    Ok(Candidates { grayscale: encode(&grayscale)?, white_caption: encode(&white_caption)? })
}

fn upscale_factor(short_side: u32) -> u32 {
    if short_side == 0 {
        return 1;
    }
    TARGET_SHORT_SIDE.div_ceil(short_side).clamp(1, MAX_UPSCALE)
}

/// Near-white pixels become black ink; everything else (outline, photo) white paper.
fn white_mask(rgb: &RgbImage) -> GrayImage {
    GrayImage::from_fn(rgb.width(), rgb.height(), |x, y| {
        let darkest = rgb.get_pixel(x, y).0.into_iter().min().unwrap_or(0);
        if darkest >= WHITE_THRESHOLD {
            Luma([0])
        } else {
            Luma([255])
        }
    })
}

fn enlarge(image: GrayImage, scale: u32) -> GrayImage {
    if scale <= 1 {
        return image;
    }
    let (w, h) = (image.width() * scale, image.height() * scale);
    image::imageops::resize(&image, w, h, FilterType::CatmullRom)
}

fn encode(image: &GrayImage) -> Result<Vec<u8>> {
    let mut bytes = Cursor::new(Vec::new());
    image.write_to(&mut bytes, ImageFormat::Png).context("encoding an image for tesseract")?;
    Ok(bytes.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    #[test]
    fn small_images_are_enlarged_by_whole_factors() {
        assert_eq!(upscale_factor(160), 3);
        assert_eq!(upscale_factor(100), 4);
        assert_eq!(upscale_factor(480), 1);
        assert_eq!(upscale_factor(2000), 1);
        assert_eq!(upscale_factor(0), 1);
    }

    #[test]
    fn only_near_white_pixels_become_ink() {
        let rgb = RgbImage::from_fn(4, 1, |x, _| match x {
            0 => Rgb([255, 255, 255]),
            1 => Rgb([250, 240, 200]),
            2 => Rgb([255, 255, 60]), // bright yellow background: not caption white
            _ => Rgb([0, 0, 0]),
        });
        let mask = white_mask(&rgb);
        let ink: Vec<u8> = mask.pixels().map(|p| p.0[0]).collect();
        assert_eq!(ink, [0, 0, 255, 255]);
    }

    #[test]
    fn undecodable_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broken.png");
        std::fs::write(&path, b"\x89PNG\r\n\x1a\nnot really").unwrap();
        let error = format!("{:#}", prepare(&path).unwrap_err());
        assert!(error.contains("broken.png"), "{error}");
    }
}
