//! One module per pane: each keeps its own state (selection, filters, toggles) apart from
//! the run data it draws, handles its own keys and draws itself.

pub mod ablations;
pub mod confusion;
pub mod errors;
pub mod f1;
pub mod gates;
pub mod loss;
pub mod runs;

use ratatui::style::{Color, Style};
use ratatui::text::Span;

/// Registers the panes once, in tab order: the enum, `ALL` and the titles follow, and so
/// do the number keys (`Pane::for_key`) and their help (`Pane::key_range`). Drawing and
/// key handling match on `Pane`, so the compiler asks for a new pane's arms there.
macro_rules! panes {
    ($($pane:ident => $title:literal),+ $(,)?) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Pane {
            $($pane),+
        }

        impl Pane {
            pub const ALL: [Pane; [$($title),+].len()] = [$(Pane::$pane),+];

            pub fn title(self) -> &'static str {
                match self {
                    $(Pane::$pane => $title),+
                }
            }
        }
    };
}

panes! {
    Loss => "Loss",
    F1 => "F1",
    Gates => "Gates",
    Errors => "Errors",
    Ablations => "Ablations",
    Runs => "Runs",
    Confusion => "Confusion",
}

// Each pane has a single digit key, `1` for the first.
const _: () = assert!(Pane::ALL.len() <= 9, "panes beyond 9 need keys other than digits");

impl Pane {
    /// The digit that switches to this pane.
    pub fn key(self) -> char {
        char::from_digit(self.index() as u32 + 1, 10).expect("at most 9 panes")
    }

    /// The pane a digit key switches to.
    pub fn for_key(key: char) -> Option<Pane> {
        let digit = key.to_digit(10)? as usize;
        digit.checked_sub(1).and_then(|index| Pane::ALL.get(index)).copied()
    }

    /// The pane keys for the help, e.g. `1-6`.
    pub fn key_range() -> String {
        format!("{}-{}", Pane::ALL[0].key(), Pane::ALL[Pane::ALL.len() - 1].key())
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
