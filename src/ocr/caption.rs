//! Drawing meme captions (white text, dark outline, top and bottom) onto images.
//!
//! OCR tests need images whose text is known, and the bundled demo needs images that
//! look like memes; both render captions with this module instead of shipping pictures
//! whose text nobody can vouch for.

use std::path::Path;

use ab_glyph::{point, Font, FontVec, PxScale, ScaleFont};
use anyhow::{Context, Result};
use image::{Rgb, RgbImage};

/// Reads a TrueType/OpenType font file.
pub fn load_font(path: &Path) -> Result<FontVec> {
    let bytes = std::fs::read(path).with_context(|| format!("reading font {}", path.display()))?;
    FontVec::try_from_vec(bytes).with_context(|| format!("{} is not a usable font", path.display()))
}

/// How captions are laid out and drawn.
#[derive(Debug, Clone, PartialEq)]
pub struct CaptionStyle {
    /// The largest font size tried; the size shrinks until the text fits its band.
    pub max_px: f32,
    /// The smallest size; text that does not fit even at this size is clipped.
    pub min_px: f32,
    /// Radius of the dark outline around each letter, in pixels (0: no outline).
    pub outline_px: u32,
    /// Free space kept between the text and the image's edges.
    pub margin_px: u32,
    /// Share of the image height that the top and the bottom caption may each use.
    pub band_fraction: f32,
    pub fill: Rgb<u8>,
    pub outline: Rgb<u8>,
}

impl Default for CaptionStyle {
    /// The classic meme look: bold white letters with a black rim.
    fn default() -> Self {
        Self {
            max_px: 40.0,
            min_px: 8.0,
            outline_px: 1,
            margin_px: 4,
            band_fraction: 0.42,
            fill: Rgb([255, 255, 255]),
            outline: Rgb([0, 0, 0]),
        }
    }
}

/// Splits a caption into top and bottom text at the word boundary nearest its middle,
/// the way meme captions are usually set. Captions of up to three words stay on top.
pub fn split_top_bottom(text: &str) -> (String, String) {
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.len() <= 3 {
        return (words.join(" "), String::new());
    }
    let total: usize = words.iter().map(|w| w.len() + 1).sum();
    let mut running = 0;
    let mut cut = words.len() - 1;
    for (i, word) in words.iter().enumerate() {
        running += word.len() + 1;
        if running * 2 >= total {
            // Put the middle word on whichever side leaves the halves closer in length.
            let before = running - word.len() - 1;
            cut = if total.abs_diff(2 * before) < total.abs_diff(2 * running) { i } else { i + 1 };
            break;
        }
    }
    let cut = cut.clamp(1, words.len() - 1);
    (words[..cut].join(" "), words[cut..].join(" "))
}

/// Draws `top` along the upper edge and `bottom` along the lower edge of `image`, each
/// word-wrapped, centred and shrunk until it fits its band. Either may be empty.
pub fn draw_meme_caption(
    image: &mut RgbImage,
    font: &impl Font,
    top: &str,
    bottom: &str,
    style: &CaptionStyle,
) {
    let (width, height) = image.dimensions();
    let mut coverage = Coverage::new(width, height);
    let band = ((height as f32 * style.band_fraction) as u32).saturating_sub(style.margin_px);
    for (text, anchor) in [(top, Anchor::Top), (bottom, Anchor::Bottom)] {
        if text.trim().is_empty() {
            continue;
        }
        let block = fit_block(font, text, width.saturating_sub(2 * style.margin_px), band, style);
        let y0 = match anchor {
            Anchor::Top => style.margin_px as f32,
            Anchor::Bottom => height.saturating_sub(style.margin_px) as f32 - block.height(),
        };
        coverage.add_block(font, &block, y0);
    }
    let rim = coverage.dilated(style.outline_px);
    for (x, y, pixel) in image.enumerate_pixels_mut() {
        let i = (y * width + x) as usize;
        *pixel = blend(*pixel, style.outline, rim[i]);
        *pixel = blend(*pixel, style.fill, coverage.alpha[i]);
    }
}

enum Anchor {
    Top,
    Bottom,
}

/// Word-wrapped lines at one font size.
struct Block {
    px: f32,
    lines: Vec<String>,
    line_height: f32,
}

impl Block {
    fn height(&self) -> f32 {
        self.line_height * self.lines.len() as f32
    }
}

/// The largest size (from `max_px` down to `min_px`) at which `text`, wrapped to
/// `max_width`, fits in `max_height`; `min_px` when nothing fits.
fn fit_block(
    font: &impl Font,
    text: &str,
    max_width: u32,
    max_height: u32,
    style: &CaptionStyle,
) -> Block {
    let mut px = style.max_px;
    loop {
        let scaled = font.as_scaled(PxScale::from(px));
        let lines = wrap(font, px, text, max_width as f32);
        let block = Block { px, lines, line_height: scaled.height() + scaled.line_gap() };
        let widest = block.lines.iter().map(|l| line_width(font, px, l)).fold(0.0, f32::max);
        let fits = widest <= max_width as f32 && block.height() <= max_height as f32;
        if fits || px <= style.min_px {
            return block;
        }
        px = (px - 1.0).max(style.min_px);
    }
}

/// Greedy word wrap; a word wider than the line stays alone on its own line.
fn wrap(font: &impl Font, px: f32, text: &str, max_width: f32) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = String::new();
    for word in text.split_whitespace() {
        let candidate =
            if current.is_empty() { word.to_string() } else { format!("{current} {word}") };
        if current.is_empty() || line_width(font, px, &candidate) <= max_width {
            current = candidate;
        } else {
            lines.push(std::mem::replace(&mut current, word.to_string()));
        }
    }
    if !current.is_empty() {
        lines.push(current);
    }
    lines
}

fn line_width(font: &impl Font, px: f32, line: &str) -> f32 {
    let scaled = font.as_scaled(PxScale::from(px));
    let mut width = 0.0;
    let mut previous = None;
    for c in line.chars() {
        let id = scaled.glyph_id(c);
        if let Some(previous) = previous {
            width += scaled.kern(previous, id);
        }
        width += scaled.h_advance(id);
        previous = Some(id);
    }
    width
}

/// Per-pixel ink coverage (0..=1) of the text drawn so far.
struct Coverage {
    width: u32,
    height: u32,
    alpha: Vec<f32>,
}

impl Coverage {
    fn new(width: u32, height: u32) -> Self {
        Self { width, height, alpha: vec![0.0; (width * height) as usize] }
    }

    /// Rasterises each line of `block`, centred horizontally, starting at height `y0`.
    fn add_block(&mut self, font: &impl Font, block: &Block, y0: f32) {
        let scaled = font.as_scaled(PxScale::from(block.px));
        for (row, line) in block.lines.iter().enumerate() {
            let baseline = y0 + row as f32 * block.line_height + scaled.ascent();
            let mut x = (self.width as f32 - line_width(font, block.px, line)) / 2.0;
            let mut previous = None;
            for c in line.chars() {
                let id = scaled.glyph_id(c);
                if let Some(previous) = previous {
                    x += scaled.kern(previous, id);
                }
                let glyph = id.with_scale_and_position(block.px, point(x, baseline));
                x += scaled.h_advance(id);
                previous = Some(id);
                if let Some(outlined) = font.outline_glyph(glyph) {
                    let bounds = outlined.px_bounds();
                    outlined.draw(|gx, gy, c| {
                        let px = bounds.min.x as i64 + gx as i64;
                        let py = bounds.min.y as i64 + gy as i64;
                        self.accumulate(px, py, c);
                    });
                }
            }
        }
    }

    fn accumulate(&mut self, x: i64, y: i64, c: f32) {
        if x < 0 || y < 0 || x >= self.width as i64 || y >= self.height as i64 {
            return;
        }
        let i = (y as u32 * self.width + x as u32) as usize;
        self.alpha[i] = (self.alpha[i] + c).min(1.0);
    }

    /// The coverage grown by a disc of `radius`: where the outline goes.
    fn dilated(&self, radius: u32) -> Vec<f32> {
        if radius == 0 {
            return vec![0.0; self.alpha.len()];
        }
        let r = radius as i64;
        let (w, h) = (self.width as i64, self.height as i64);
        let mut out = vec![0.0f32; self.alpha.len()];
        for y in 0..h {
            for x in 0..w {
                let mut best = 0.0f32;
                for dy in -r..=r {
                    for dx in -r..=r {
                        let (nx, ny) = (x + dx, y + dy);
                        if dx * dx + dy * dy > r * r + r || nx < 0 || ny < 0 || nx >= w || ny >= h {
                            continue;
                        }
                        best = best.max(self.alpha[(ny * w + nx) as usize]);
                    }
                }
                out[(y * w + x) as usize] = best;
            }
        }
        out
    }
}

fn blend(under: Rgb<u8>, over: Rgb<u8>, alpha: f32) -> Rgb<u8> {
    let mix = |a: u8, b: u8| (a as f32 * (1.0 - alpha) + b as f32 * alpha).round() as u8;
    Rgb([mix(under[0], over[0]), mix(under[1], over[1]), mix(under[2], over[2])])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_captions_stay_on_top() {
        assert_eq!(split_top_bottom("  me  at 3am "), ("me at 3am".to_string(), String::new()));
    }

    #[test]
    fn long_captions_split_near_the_middle() {
        let (top, bottom) =
            split_top_bottom("when the deadline is tomorrow and you have not started");
        assert_eq!(top, "when the deadline is tomorrow");
        assert_eq!(bottom, "and you have not started");
        let (top, bottom) = split_top_bottom("a b c dddddddddddddddddddd");
        assert_eq!((top.as_str(), bottom.as_str()), ("a b c", "dddddddddddddddddddd"));
    }
}
