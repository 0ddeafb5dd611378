//! What every figure shares: the embedded font, the run colours, a legend strip, and
//! rendering one drawing to both SVG and PNG.

use std::path::{Path, PathBuf};
use std::sync::Once;

use anyhow::{anyhow, Context, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Figures are drawn with the shipped font, registered under this family name, so no
/// system font (nor fontconfig) is needed. SVG viewers use their own sans-serif.
pub const FONT: &str = "sans-serif";
const FONT_BYTES: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans-Bold.ttf");

pub const TITLE_SIZE: u32 = 26;
pub const LABEL_SIZE: u32 = 20;
pub const SMALL_SIZE: u32 = 17;

/// Tableau's ten colours: distinct for up to ten runs, and legible in greyscale print.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

pub fn run_color(index: usize) -> RGBColor {
    PALETTE[index % PALETTE.len()]
}

pub type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// A figure that can draw itself on any plotters backend.
pub trait Figure {
    /// Width and height in pixels (SVG user units).
    fn size(&self) -> (u32, u32);
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB>;
}

/// Writes `figure` as `<out>/<stem>.png` and `<out>/<stem>.svg`; returns both paths.
pub fn render(figure: &impl Figure, out: &Path, stem: &str) -> Result<Vec<PathBuf>> {
    register_font();
    let (width, height) = figure.size();
    let describe = |error: &dyn std::fmt::Display| anyhow!("drawing {stem}: {error}");

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| describe(&e))?;
        figure.draw(&root).map_err(|e| describe(&e))?;
        root.present().map_err(|e| describe(&e))?;
    }
    let svg_path = out.join(format!("{stem}.svg"));
    std::fs::write(&svg_path, svg).with_context(|| format!("writing {}", svg_path.display()))?;

    let mut pixels = vec![0u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| describe(&e))?;
        figure.draw(&root).map_err(|e| describe(&e))?;
        root.present().map_err(|e| describe(&e))?;
    }
    let png_path = out.join(format!("{stem}.png"));
    image::RgbImage::from_raw(width, height, pixels)
        .context("the bitmap has the figure's size")?
        .save(&png_path)
        .with_context(|| format!("writing {}", png_path.display()))?;
    Ok(vec![png_path, svg_path])
}

fn register_font() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        // The font is compiled in; it failing to parse is a build defect, caught by tests.
        if plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES).is_err() {
            panic!("assets/fonts/DejaVuSans-Bold.ttf is not a usable font");
        }
    });
}

pub fn text_style(size: u32) -> TextStyle<'static> {
    (FONT, size).into_font().color(&BLACK)
}

/// `style` anchored at a point: e.g. right-aligned and vertically centred for axis labels.
pub fn anchored(style: TextStyle<'static>, h: HPos, v: VPos) -> TextStyle<'static> {
    style.pos(Pos::new(h, v))
}

/// The width in pixels of the widest of `texts` in `style`.
pub fn widest<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    texts: &[String],
    style: &TextStyle,
) -> u32 {
    texts
        .iter()
        .filter_map(|text| area.estimate_text_size(text, style).ok())
        .map(|(width, _)| width)
        .max()
        .unwrap_or(0)
}

/// The height of a legend strip of `entries` in a figure `width` pixels wide.
pub fn legend_height(entries: usize, width: u32) -> u32 {
    let per_row = (width / LEGEND_ENTRY_WIDTH).max(1) as usize;
    (entries.div_ceil(per_row) as u32) * 30 + 10
}

const LEGEND_ENTRY_WIDTH: u32 = 380;

/// One swatch (in [`run_color`]) and name per run, left to right, wrapping; names longer
/// than an entry are shortened from the left (run ids differ at their end).
pub fn draw_run_legend<'a, DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    names: impl IntoIterator<Item = &'a str>,
) -> DrawResult<DB> {
    let (width, _) = area.dim_in_pixel();
    let per_row = (width / LEGEND_ENTRY_WIDTH).max(1) as usize;
    let style = anchored(text_style(SMALL_SIZE), HPos::Left, VPos::Center);
    for (i, name) in names.into_iter().enumerate() {
        let x = 20 + (i % per_row) as i32 * LEGEND_ENTRY_WIDTH as i32;
        let y = 20 + (i / per_row) as i32 * 30;
        area.draw(&Rectangle::new([(x, y - 7), (x + 28, y + 7)], run_color(i).filled()))?;
        area.draw(&Text::new(shorten_left(name, 30), (x + 36, y), style.clone()))?;
    }
    Ok(())
}

/// `text` cut to its last `max` characters, with an ellipsis in front.
pub fn shorten_left(text: &str, max: usize) -> String {
    let count = text.chars().count();
    if count <= max {
        text.to_string()
    } else {
        let tail: String = text.chars().skip(count - (max - 1)).collect();
        format!("…{tail}")
    }
}

/// White for 0, deepening to a dark blue at 1 (values outside are clamped).
pub fn blues(value: f64) -> RGBColor {
    let t = value.clamp(0.0, 1.0);
    let mix = |from: f64, to: f64| (from + (to - from) * t).round() as u8;
    RGBColor(mix(247.0, 8.0), mix(251.0, 48.0), mix(255.0, 107.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_keep_their_end() {
        assert_eq!(shorten_left("abc", 5), "abc");
        assert_eq!(shorten_left("20261130-abcdef", 5), "…cdef");
    }

    #[test]
    fn the_colour_scale_runs_from_white_to_dark_blue() {
        assert_eq!(blues(0.0), RGBColor(247, 251, 255));
        assert_eq!(blues(1.0), RGBColor(8, 48, 107));
        assert_eq!(blues(2.0), blues(1.0));
    }
}
