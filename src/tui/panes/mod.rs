//! One module per pane: each keeps its own state (selection, filters, toggles) apart from
//! the run data it draws, handles its own keys and draws itself.

pub mod ablations;
pub mod errors;
pub mod f1;
pub mod gates;
pub mod loss;
pub mod runs;

use ratatui::style::{Color, Style};
use ratatui::text::Span;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Loss,
    F1,
    Gates,
    Errors,
    Ablations,
    Runs,
}

impl Pane {
    pub const ALL: [Pane; 6] =
        [Pane::Loss, Pane::F1, Pane::Gates, Pane::Errors, Pane::Ablations, Pane::Runs];

    pub fn title(self) -> &'static str {
        match self {
            Pane::Loss => "Loss",
            Pane::F1 => "F1",
            Pane::Gates => "Gates",
            Pane::Errors => "Errors",
            Pane::Ablations => "Ablations",
            Pane::Runs => "Runs",
        }
    }

    pub fn index(self) -> usize {
        Pane::ALL.iter().position(|&p| p == self).expect("every pane is listed")
    }

    pub fn next(self) -> Pane {
        Pane::ALL[(self.index() + 1) % Pane::ALL.len()]
    }

    pub fn previous(self) -> Pane {
        Pane::ALL[(self.index() + Pane::ALL.len() - 1) % Pane::ALL.len()]
    }
}

/// A horizontal bar of `width` cells filled in proportion to `value` in [0, 1].
pub fn bar(value: f64, width: usize) -> String {
    let filled = (value.clamp(0.0, 1.0) * width as f64).round() as usize;
    format!("{}{}", "█".repeat(filled), "·".repeat(width - filled))
}

/// A signed difference, green when better, red when worse.
pub fn delta_span(delta: f64) -> Span<'static> {
    let color = if delta > 0.0005 {
        Color::Green
    } else if delta < -0.0005 {
        Color::Red
    } else {
        Color::Gray
    };
    Span::styled(format!("{delta:+.3}"), Style::new().fg(color))
}

/// Moves a selection within `len` items by `by`, clamped to the ends.
pub fn step_selection(selected: usize, len: usize, by: isize) -> usize {
    if len == 0 {
        return 0;
    }
    selected.saturating_add_signed(by).min(len - 1)
}
