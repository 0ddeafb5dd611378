//! Per-class precision, recall and F1 of the latest epoch, with the change since the
//! previous epoch and the best epoch so far.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table};
use ratatui::Frame;

use super::{bar, delta_span};
use crate::tui::run_view::RunView;

const BAR_WIDTH: usize = 20;

pub fn draw(frame: &mut Frame, area: Rect, view: &RunView) {
    let Some(latest) = view.latest_epoch() else {
        frame.render_widget(
            Paragraph::new("No validation epoch yet.").block(Block::bordered().title("F1")),
            area,
        );
        return;
    };
    let previous = view.previous_epoch();
    let best = view.best_epoch();
    let [summary_area, table_area] =
        Layout::vertical([Constraint::Length(4), Constraint::Min(3)]).areas(area);

    let metrics = &latest.metrics;
    let mut first = vec![
        Span::raw(format!("epoch {}  ", latest.epoch)),
        Span::styled(format!("macro F1 {:.3}", metrics.macro_f1), Style::new().bold()),
    ];
    if let Some(prev) = previous {
        first.push(Span::raw(" ("));
        first.push(delta_span(metrics.macro_f1 - prev.metrics.macro_f1));
        first.push(Span::raw(")"));
    }
    first.push(Span::raw(format!("   weighted F1 {:.3}", metrics.weighted_f1)));
    if let Some(prev) = previous {
        first.push(Span::raw(" ("));
        first.push(delta_span(metrics.weighted_f1 - prev.metrics.weighted_f1));
        first.push(Span::raw(")"));
    }
    first.push(Span::raw(format!("   accuracy {:.3}", metrics.accuracy)));
    if let Some(samples) = metrics.samples_f1 {
        first.push(Span::raw(format!("   samples F1 {samples:.3}")));
    }
    let second = match best {
        Some(best) if best.epoch == latest.epoch => Line::from(Span::styled(
            "★ this is the best epoch so far",
            Style::new().fg(Color::Yellow),
        )),
        Some(best) => Line::from(format!(
            "★ best epoch {}: macro F1 {:.3}, weighted F1 {:.3}",
            best.epoch, best.metrics.macro_f1, best.metrics.weighted_f1
        )),
        None => Line::from("no best epoch yet"),
    };
    frame.render_widget(
        Paragraph::new(vec![Line::from(first), second]).block(Block::bordered().title("F1")),
        summary_area,
    );

    let label_width = metrics.per_class.iter().map(|c| c.label.chars().count()).max().unwrap_or(5);
    let columns = [label_width.max(5) + 1, 9, 7, 6, 7, 7];
    // The bar takes what the numbers leave (borders and column gaps too), so that a narrow
    // terminal shortens the bars instead of cutting the class names.
    let used = columns.iter().sum::<usize>() + columns.len() + 2;
    let bar_width = (table_area.width as usize).saturating_sub(used).clamp(5, BAR_WIDTH);
    let mut widths: Vec<Constraint> =
        columns.iter().map(|&w| Constraint::Length(w as u16)).collect();
    widths.push(Constraint::Length(bar_width as u16));
    let header = Row::new(["class", "precision", "recall", "F1", "Δ F1", "support", "F1 bar"])
        .style(Style::new().bold());
    let rows = metrics.per_class.iter().enumerate().map(|(i, class)| {
        let delta = previous
            .and_then(|p| p.metrics.per_class.get(i))
            .map(|p| Line::from(delta_span(class.f1 - p.f1)))
            .unwrap_or_else(|| Line::from("—"));
        Row::new(vec![
            Cell::from(class.label.clone()),
            Cell::from(format!("{:.3}", class.precision)),
            Cell::from(format!("{:.3}", class.recall)),
            Cell::from(format!("{:.3}", class.f1)),
            Cell::from(delta),
            Cell::from(class.support.to_string()),
            Cell::from(Span::styled(bar(class.f1, bar_width), Style::new().fg(Color::Cyan))),
        ])
    });
    let mut title = format!("per class, epoch {}", latest.epoch);
    if let Some(thresholds) = &latest.thresholds {
        let shown: Vec<String> = thresholds.iter().map(|t| format!("{t:.2}")).collect();
        title.push_str(&format!(" · thresholds {}", shown.join(" ")));
    }
    frame.render_widget(
        Table::new(rows, widths).header(header).block(Block::bordered().title(title)),
        table_area,
    );
}
