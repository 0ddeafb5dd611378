//! Per-class F1 of each run's best epoch as horizontal bars, the runs side by side within
//! each class (class names are long: they read better down the side than under bars).

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use crate::report::canvas::{
    anchored, draw_run_legend, legend_height, run_color, text_style, widest, DrawResult, Figure,
    LABEL_SIZE, SMALL_SIZE, TITLE_SIZE,
};
use crate::report::loaded::ReportedRun;

const WIDTH: u32 = 1400;
const BAR_HEIGHT: u32 = 26;

pub struct ClassF1 {
    classes: Vec<String>,
    /// Each run's name and its F1 per class (`None`: the run has no such class).
    runs: Vec<(String, Vec<Option<f64>>)>,
}

impl ClassF1 {
    /// `None` when no run has a best epoch. Classes are those of the first run that has one.
    pub fn of(runs: &[ReportedRun]) -> Option<Self> {
        let classes = runs.iter().find_map(|run| run.report.as_ref())?.labels.clone();
        let runs = runs
            .iter()
            .filter_map(|run| {
                let report = run.report.as_ref()?;
                let f1 = classes
                    .iter()
                    .map(|class| report.per_class.iter().find(|c| &c.label == class).map(|c| c.f1))
                    .collect();
                Some((run.name.clone(), f1))
            })
            .collect();
        Some(Self { classes, runs })
    }

    fn plot_height(&self) -> u32 {
        let group = BAR_HEIGHT * self.runs.len() as u32 + 24;
        group * self.classes.len() as u32 + 160
    }
}

impl Figure for ClassF1 {
    fn size(&self) -> (u32, u32) {
        (WIDTH, self.plot_height() + legend_height(self.runs.len(), WIDTH))
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let (plot, legend) = root.split_vertically(self.plot_height());
        let label_style = anchored(text_style(LABEL_SIZE), HPos::Right, VPos::Center);
        let label_width = widest(&plot, &self.classes, &label_style) + 30;
        let classes = self.classes.len() as f64;
        let mut chart = ChartBuilder::on(&plot)
            .caption("Per-class F1 on validation (best epoch)", text_style(TITLE_SIZE))
            .margin(16)
            .margin_right(40)
            .x_label_area_size(60)
            .y_label_area_size(label_width)
            .build_cartesian_2d(0.0..1.0, 0.0..classes)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .x_labels(11)
            .x_label_formatter(&|x| format!("{x:.1}"))
            .x_desc("F1 (0 to 1)")
            .light_line_style(WHITE.mix(0.0))
            .label_style(text_style(SMALL_SIZE))
            .axis_desc_style(text_style(LABEL_SIZE))
            .draw()?;
        let runs = self.runs.len() as f64;
        let bar = 0.8 / runs;
        let value_style = anchored(text_style(SMALL_SIZE - 3), HPos::Left, VPos::Center);
        for (c, class) in self.classes.iter().enumerate() {
            // The first class at the top.
            let top = classes - c as f64 - 0.1;
            let (x, y) = chart.backend_coord(&(0.0, classes - c as f64 - 0.5));
            plot.draw(&plotters::element::Text::new(
                class.clone(),
                (x - 12, y),
                label_style.clone(),
            ))?;
            for (r, (_, f1)) in self.runs.iter().enumerate() {
                let Some(f1) = f1[c] else { continue };
                let y1 = top - r as f64 * bar;
                let y0 = y1 - bar;
                let color = run_color(r);
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(0.0, y0 + bar * 0.08), (f1, y1 - bar * 0.08)],
                    color.filled(),
                )))?;
                let (x, y) = chart.backend_coord(&(f1, (y0 + y1) / 2.0));
                plot.draw(&plotters::element::Text::new(
                    format!("{f1:.2}"),
                    (x + 6, y),
                    value_style.clone(),
                ))?;
            }
        }
        draw_run_legend(&legend, self.runs.iter().map(|(name, _)| name.as_str()))
    }
}
