//! A labelled grid of shaded cells with its colour scale: the confusion matrix and the
//! gate usage per class are both drawn as one.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use crate::report::canvas::{
    anchored, blues, text_style, widest, DrawResult, Figure, LABEL_SIZE, SMALL_SIZE, TITLE_SIZE,
};

const CELL: u32 = 96;
const SCALE_WIDTH: u32 = 150;
const TOP: u32 = 110;

pub struct Heatmap {
    pub title: String,
    pub subtitle: String,
    pub row_title: String,
    pub column_title: String,
    pub rows: Vec<String>,
    pub columns: Vec<String>,
    /// `shade[row][column]`, scaled to `scale`.
    pub shade: Vec<Vec<f64>>,
    /// The text in each cell.
    pub cells: Vec<Vec<String>>,
    /// The values at the bottom and top of the colour scale, and what it measures.
    pub scale: (f64, f64, String),
}

impl Heatmap {
    /// Room for the row labels (left) and the column labels, written upwards (below).
    fn margins(&self) -> (u32, u32) {
        // Estimated before a drawing area exists: about 0.62 em per character.
        let chars = |labels: &[String]| labels.iter().map(|l| l.chars().count()).max().unwrap_or(0);
        let em = LABEL_SIZE as f64 * 0.62;
        let left = (chars(&self.rows) as f64 * em) as u32 + 70;
        let bottom = (chars(&self.columns) as f64 * em) as u32 + 40;
        (left, bottom)
    }
}

impl Figure for Heatmap {
    fn size(&self) -> (u32, u32) {
        let (left, bottom) = self.margins();
        let width = left + CELL * self.columns.len() as u32 + SCALE_WIDTH + 40;
        let height = TOP + CELL * self.rows.len() as u32 + bottom;
        (width.max(900), height)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let (left, _) = self.margins();
        let label = text_style(LABEL_SIZE);
        let (width, _) = root.dim_in_pixel();
        let centred = |size| anchored(text_style(size), HPos::Center, VPos::Center);
        root.draw(&Text::new(self.title.clone(), (width as i32 / 2, 28), centred(TITLE_SIZE)))?;
        root.draw(&Text::new(self.subtitle.clone(), (width as i32 / 2, 62), centred(SMALL_SIZE)))?;

        let x0 = left as i32;
        let y0 = TOP as i32;
        let cell = CELL as i32;
        let grid_w = cell * self.columns.len() as i32;
        let grid_h = cell * self.rows.len() as i32;
        for (r, row) in self.shade.iter().enumerate() {
            for (c, &value) in row.iter().enumerate() {
                let (x, y) = (x0 + c as i32 * cell, y0 + r as i32 * cell);
                let t = scaled(value, &self.scale);
                root.draw(&Rectangle::new([(x, y), (x + cell, y + cell)], blues(t).filled()))?;
                root.draw(&Rectangle::new([(x, y), (x + cell, y + cell)], WHITE.stroke_width(2)))?;
                // Light text on dark cells.
                let ink = match t > 0.55 {
                    true => text_style(SMALL_SIZE).color(&WHITE),
                    false => text_style(SMALL_SIZE),
                };
                let style = anchored(ink, HPos::Center, VPos::Center);
                let text = self.cells[r][c].clone();
                root.draw(&Text::new(text, (x + cell / 2, y + cell / 2), style))?;
            }
        }
        let row_style = anchored(label.clone(), HPos::Right, VPos::Center);
        for (r, name) in self.rows.iter().enumerate() {
            let y = y0 + r as i32 * cell + cell / 2;
            root.draw(&Text::new(name.clone(), (x0 - 10, y), row_style.clone()))?;
        }
        // Read upwards, ending just below the grid.
        let column_style =
            anchored(label, HPos::Right, VPos::Center).transform(FontTransform::Rotate270);
        for (c, name) in self.columns.iter().enumerate() {
            let x = x0 + c as i32 * cell + cell / 2;
            root.draw(&Text::new(name.clone(), (x, y0 + grid_h + 10), column_style.clone()))?;
        }
        let longest = widest(root, &self.columns, &text_style(LABEL_SIZE)) as i32;
        root.draw(&Text::new(
            self.column_title.clone(),
            (x0 + grid_w / 2, y0 + grid_h + longest + 40),
            centred(LABEL_SIZE),
        ))?;
        let row_title = anchored(text_style(LABEL_SIZE), HPos::Center, VPos::Center)
            .transform(FontTransform::Rotate270);
        root.draw(&Text::new(self.row_title.clone(), (18, y0 + grid_h / 2), row_title))?;
        self.draw_scale(root, x0 + grid_w + 40, y0, grid_h.max(cell * 2))
    }
}

impl Heatmap {
    /// A vertical colour bar, its ends labelled, and what it measures.
    fn draw_scale<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        x: i32,
        y: i32,
        height: i32,
    ) -> DrawResult<DB> {
        let steps = 64;
        for i in 0..steps {
            let t = 1.0 - i as f64 / (steps - 1) as f64;
            let top = y + height * i / steps;
            let bottom = y + height * (i + 1) / steps;
            root.draw(&Rectangle::new([(x, top), (x + 24, bottom + 1)], blues(t).filled()))?;
        }
        root.draw(&Rectangle::new([(x, y), (x + 24, y + height)], BLACK.stroke_width(1)))?;
        let (low, high, what) = &self.scale;
        let style = anchored(text_style(SMALL_SIZE), HPos::Left, VPos::Center);
        root.draw(&Text::new(format!("{high:.2}"), (x + 30, y + 8), style.clone()))?;
        root.draw(&Text::new(format!("{low:.2}"), (x + 30, y + height - 8), style))?;
        let title = anchored(text_style(SMALL_SIZE), HPos::Center, VPos::Center)
            .transform(FontTransform::Rotate90);
        root.draw(&Text::new(what.clone(), (x + 100, y + height / 2), title))
    }
}

/// `value` as a position 0..1 on the scale `(low, high, _)`.
fn scaled(value: f64, (low, high, _): &(f64, f64, String)) -> f64 {
    if high > low {
        (value - low) / (high - low)
    } else {
        0.0
    }
}
