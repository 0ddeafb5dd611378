//! Training loss per step (smoothed line over a faint raw trace, or the loss components)
//! and validation loss per epoch, or the learning-rate schedule.

use std::collections::BTreeMap;

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::symbols::Marker;
use ratatui::text::Line;
use ratatui::widgets::{Axis, Block, Chart, Dataset, GraphType, Paragraph};
use ratatui::Frame;

use crate::tui::run_view::RunView;

/// At most this many points per line: a chart is a few hundred cells wide, so more
/// points only cost time.
const MAX_POINTS: usize = 2_000;
const COMPONENT_COLORS: [Color; 6] =
    [Color::Magenta, Color::Green, Color::Blue, Color::LightRed, Color::LightCyan, Color::White];

#[derive(Debug, Default)]
pub struct LossPane {
    /// Show the named parts of the loss instead of the raw total.
    pub show_components: bool,
    /// Show the learning rate per step instead of the loss.
    pub show_lr: bool,
}

impl LossPane {
    pub fn handle_key(&mut self, key: KeyEvent) -> bool {
        match key.code {
            KeyCode::Char('c') => self.show_components = !self.show_components,
            KeyCode::Char('l') => self.show_lr = !self.show_lr,
            _ => return false,
        }
        true
    }

    pub fn draw(&self, frame: &mut Frame, area: Rect, view: &RunView) {
        let [header, chart_area] =
            Layout::vertical([Constraint::Length(1), Constraint::Min(3)]).areas(area);
        frame.render_widget(Paragraph::new(self.header(view)), header);
        if view.steps.is_empty() {
            let message = match &view.failure {
                Some(failure) => format!("The run failed: {failure}"),
                None => "No training steps yet.".to_string(),
            };
            frame.render_widget(
                Paragraph::new(message).block(Block::bordered().title("Loss")),
                chart_area,
            );
            return;
        }
        if self.show_lr {
            draw_lr(frame, chart_area, view);
            return;
        }

        let raw = thin(view.steps.iter().map(|p| (p.step as f64, p.loss as f64)));
        let smoothed = thin(view.steps.iter().map(|p| (p.step as f64, p.smoothed as f64)));
        // Validation loss is measured after each epoch: place it at that epoch's last step.
        let validation: Vec<(f64, f64)> = view
            .epochs
            .iter()
            .zip(&view.epoch_end_steps)
            .map(|(e, &step)| (step as f64, e.val_loss as f64))
            .collect();
        let components = self.component_series(view);

        let mut datasets = Vec::new();
        if self.show_components {
            for (i, (name, points)) in components.iter().enumerate() {
                datasets.push(
                    Dataset::default()
                        .name(name.clone())
                        .marker(Marker::Braille)
                        .graph_type(GraphType::Line)
                        .style(Style::new().fg(COMPONENT_COLORS[i % COMPONENT_COLORS.len()]))
                        .data(points),
                );
            }
        } else {
            datasets.push(
                Dataset::default()
                    .name("raw")
                    .marker(Marker::Braille)
                    .graph_type(GraphType::Line)
                    .style(Style::new().fg(Color::DarkGray))
                    .data(&raw),
            );
        }
        datasets.push(
            Dataset::default()
                .name("train (EMA)")
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(Style::new().fg(Color::Cyan))
                .data(&smoothed),
        );
        datasets.push(
            Dataset::default()
                .name("validation")
                .marker(Marker::Dot)
                .graph_type(GraphType::Line)
                .style(Style::new().fg(Color::Yellow))
                .data(&validation),
        );

        let all_points = raw
            .iter()
            .chain(&validation)
            .chain(components.values().flatten().filter(|_| self.show_components));
        let (mut x_max, mut y_min, mut y_max) = (1.0f64, f64::INFINITY, f64::NEG_INFINITY);
        for &(x, y) in all_points {
            x_max = x_max.max(x);
            y_min = y_min.min(y);
            y_max = y_max.max(y);
        }
        let x_min = view.steps.front().map_or(0.0, |p| p.step as f64);
        let pad = ((y_max - y_min) * 0.05).max(1e-3);
        let (y_min, y_max) = ((y_min - pad).max(0.0), y_max + pad);
        let chart = Chart::new(datasets)
            .block(Block::bordered().title("Loss"))
            .x_axis(step_axis(x_min, x_max))
            .y_axis(
                Axis::default()
                    .bounds([y_min, y_max])
                    .labels([format!("{y_min:.3}"), format!("{y_max:.3}")]),
            );
        frame.render_widget(chart, chart_area);
    }

    fn header(&self, view: &RunView) -> Line<'static> {
        let mut parts = Vec::new();
        if let Some(last) = view.steps.back() {
            parts.push(format!("train loss {:.3} (EMA {:.3})", last.loss, last.smoothed));
        }
        if let Some(epoch) = view.latest_epoch() {
            parts.push(format!("val loss {:.3} @ epoch {}", epoch.val_loss, epoch.epoch));
        }
        if view.steps.back().is_some_and(|p| !p.components.is_empty()) || self.show_components {
            let state = if self.show_components { "on" } else { "off" };
            parts.push(format!("components {state} (c)"));
        }
        if let Some(last) = view.steps.back() {
            parts.push(format!(
                "lr {:.2e} (l: {})",
                last.lr,
                if self.show_lr { "loss" } else { "schedule" }
            ));
        }
        Line::from(parts.join("  ·  ")).bold()
    }

    fn component_series(&self, view: &RunView) -> BTreeMap<String, Vec<(f64, f64)>> {
        let mut series: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
        if !self.show_components {
            return series;
        }
        for point in &view.steps {
            for (name, value) in &point.components {
                series.entry(name.clone()).or_default().push((point.step as f64, *value as f64));
            }
        }
        series.into_iter().map(|(name, points)| (name, thin(points.into_iter()))).collect()
    }
}

/// The global step axis from `x_min` to `x_max`, labelled at its ends.
fn step_axis(x_min: f64, x_max: f64) -> Axis<'static> {
    Axis::default()
        .title("step")
        .bounds([x_min, x_max])
        .labels([format!("{x_min:.0}"), format!("{x_max:.0}")])
}

/// The learning rate of each step (the head's; the encoder and lexical rates follow the
/// same schedule scaled).
fn draw_lr(frame: &mut Frame, area: Rect, view: &RunView) {
    let points = thin(view.steps.iter().map(|p| (p.step as f64, p.lr)));
    let x_min = view.steps.front().map_or(0.0, |p| p.step as f64);
    let x_max = points.iter().map(|p| p.0).fold(x_min + 1.0, f64::max);
    let y_max = points.iter().map(|p| p.1).fold(0.0, f64::max).max(f64::MIN_POSITIVE) * 1.05;
    let dataset = Dataset::default()
        .name("learning rate")
        .marker(Marker::Braille)
        .graph_type(GraphType::Line)
        .style(Style::new().fg(Color::Green))
        .data(&points);
    let chart = Chart::new(vec![dataset])
        .block(Block::bordered().title("Learning rate"))
        .x_axis(step_axis(x_min, x_max))
        .y_axis(
            Axis::default().bounds([0.0, y_max]).labels(["0".to_string(), format!("{y_max:.1e}")]),
        );
    frame.render_widget(chart, area);
}

/// Keeps every n-th point so that at most `MAX_POINTS` remain (always the last one).
fn thin(points: impl ExactSizeIterator<Item = (f64, f64)>) -> Vec<(f64, f64)> {
    let len = points.len();
    let stride = len.div_ceil(MAX_POINTS).max(1);
    let mut kept: Vec<(f64, f64)> = Vec::with_capacity(len / stride + 1);
    let mut last = None;
    for (i, point) in points.enumerate() {
        if i % stride == 0 {
            kept.push(point);
        }
        last = Some((i, point));
    }
    if let Some((i, point)) = last {
        if i % stride != 0 {
            kept.push(point);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thinning_bounds_points_and_keeps_the_ends() {
        let points = thin((0..10_001).map(|i| (i as f64, 0.0)));
        assert!(points.len() <= MAX_POINTS + 1);
        assert_eq!(points.first().unwrap().0, 0.0);
        assert_eq!(points.last().unwrap().0, 10_000.0);
    }
}
