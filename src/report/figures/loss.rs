//! Loss curves: training and validation loss per epoch, one colour per run.

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::report::canvas::{
    draw_run_legend, legend_height, run_color, text_style, DrawResult, Figure, LABEL_SIZE,
    SMALL_SIZE, TITLE_SIZE,
};
use crate::report::loaded::ReportedRun;

const WIDTH: u32 = 1400;
const PANEL_HEIGHT: u32 = 560;

/// One epoch's (epoch, training loss, validation loss).
type EpochLosses = (usize, f64, f64);

pub struct LossCurves {
    /// Each run's name and its points.
    runs: Vec<(String, Vec<EpochLosses>)>,
}

impl LossCurves {
    /// `None` when no run has a completed epoch.
    pub fn of(runs: &[ReportedRun]) -> Option<Self> {
        let runs: Vec<_> = runs
            .iter()
            .map(|run| {
                let points = run.epochs.iter().map(|e| (e.epoch, e.train_loss, e.val_loss));
                (run.name.clone(), points.collect::<Vec<_>>())
            })
            .collect();
        runs.iter().any(|(_, points)| !points.is_empty()).then_some(Self { runs })
    }
}

impl Figure for LossCurves {
    fn size(&self) -> (u32, u32) {
        (WIDTH, PANEL_HEIGHT + legend_height(self.runs.len(), WIDTH))
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let (panels, legend) = root.split_vertically(PANEL_HEIGHT);
        let [train, validation] = [0, 1].map(|i| panels.split_evenly((1, 2))[i].clone());
        self.panel(&train, "Training loss", |p| p.1)?;
        self.panel(&validation, "Validation loss", |p| p.2)?;
        draw_run_legend(&legend, self.runs.iter().map(|(name, _)| name.as_str()))
    }
}

impl LossCurves {
    fn panel<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        title: &str,
        value: impl Fn(&EpochLosses) -> f64,
    ) -> DrawResult<DB> {
        let last_epoch = self.runs.iter().flat_map(|(_, p)| p.iter().map(|p| p.0)).max();
        let last_epoch = last_epoch.unwrap_or(1) as i32;
        let values: Vec<f64> = self
            .runs
            .iter()
            .flat_map(|(_, p)| p.iter().map(&value))
            .filter(|v| v.is_finite())
            .collect();
        let (low, high) =
            values.iter().fold((f64::MAX, f64::MIN), |(l, h), v| (l.min(*v), h.max(*v)));
        let pad = ((high - low) * 0.08).max(high.abs() * 0.02).max(1e-3);
        let mut chart = ChartBuilder::on(area)
            .caption(title, text_style(TITLE_SIZE))
            .margin(16)
            .x_label_area_size(60)
            .y_label_area_size(90)
            // The axis runs one epoch past both ends so the first and last points are not
            // drawn on the frame.
            .build_cartesian_2d(0..last_epoch + 1, (low - pad).max(0.0)..high + pad)?;
        chart
            .configure_mesh()
            .x_labels((last_epoch + 2) as usize)
            .x_label_formatter(&|x| {
                if (1..=last_epoch).contains(x) {
                    x.to_string()
                } else {
                    String::new()
                }
            })
            .y_labels(6)
            .y_label_formatter(&|y| format!("{y:.2}"))
            .x_desc("epoch")
            .y_desc("mean loss per sample")
            .label_style(text_style(SMALL_SIZE))
            .axis_desc_style(text_style(LABEL_SIZE))
            .light_line_style(WHITE.mix(0.0))
            .draw()?;
        for (i, (_, points)) in self.runs.iter().enumerate() {
            let color = run_color(i);
            let series: Vec<(i32, f64)> = points.iter().map(|p| (p.0 as i32, value(p))).collect();
            chart.draw_series(LineSeries::new(series.clone(), color.stroke_width(3)))?;
            chart.draw_series(series.iter().map(|&p| Circle::new(p, 5, color.filled())))?;
        }
        Ok(())
    }
}
