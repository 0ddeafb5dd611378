//! How the mixture-of-experts routes: mean gate weight per expert and per true class,
//! with experts that collapsed (almost never or almost always chosen) flagged.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table};
use ratatui::Frame;

use super::bar;
use crate::tui::run_view::RunView;

/// Below this mean weight an expert is effectively unused.
pub const COLLAPSED_BELOW: f32 = 0.05;
/// Above this mean weight one expert does all the work.
pub const DOMINANT_ABOVE: f32 = 0.9;
const BAR_WIDTH: usize = 30;

/// Why an expert's mean weight is suspicious, if it is.
pub fn collapse_flag(mean_weight: f32) -> Option<&'static str> {
    if mean_weight < COLLAPSED_BELOW {
        Some("COLLAPSED: unused (mean < 0.05)")
    } else if mean_weight > DOMINANT_ABOVE {
        Some("COLLAPSED: dominant (mean > 0.9)")
    } else {
        None
    }
}

pub fn draw(frame: &mut Frame, area: Rect, view: &RunView) {
    let block = Block::bordered().title("Gates");
    let Some(epoch) = view.latest_epoch() else {
        frame.render_widget(Paragraph::new("No validation epoch yet.").block(block), area);
        return;
    };
    let Some(gates) = &epoch.gates else {
        let moe_off = view.info.as_ref().is_some_and(|info| !info.ablation.moe);
        let message = if moe_off {
            "MoE off: this run has no mixture-of-experts, so there are no gates to show."
        } else {
            "MoE off: the trainer reported no gate data for this epoch."
        };
        frame.render_widget(Paragraph::new(message).block(block), area);
        return;
    };

    let experts = gates.per_expert.len() as u16;
    let [bars_area, table_area] =
        Layout::vertical([Constraint::Length(experts + 2), Constraint::Min(3)]).areas(area);
    let lines: Vec<Line> = gates
        .per_expert
        .iter()
        .enumerate()
        .map(|(i, &weight)| {
            let mut spans = vec![
                Span::raw(format!("E{i} ")),
                Span::styled(bar(weight as f64, BAR_WIDTH), Style::new().fg(Color::Cyan)),
                Span::raw(format!(" {weight:.3}  ")),
            ];
            if let Some(flag) = collapse_flag(weight) {
                spans.push(Span::styled(flag, Style::new().fg(Color::Red).bold()));
            }
            Line::from(spans)
        })
        .collect();
    frame.render_widget(
        Paragraph::new(lines)
            .block(block.title(format!("mean gate weight per expert, epoch {}", epoch.epoch))),
        bars_area,
    );

    let labels = view.labels();
    let mut header = vec![Cell::from("class")];
    header.extend((0..gates.per_expert.len()).map(|i| Cell::from(format!("E{i}"))));
    header.push(Cell::from("routes to"));
    let rows = gates.per_class.iter().enumerate().map(|(class, weights)| {
        let top =
            weights.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(expert, _)| expert);
        let mut cells = vec![Cell::from(labels.get(class).cloned().unwrap_or(format!("#{class}")))];
        cells.extend(weights.iter().enumerate().map(|(expert, w)| {
            let style = if Some(expert) == top {
                Style::new().fg(Color::Yellow).bold()
            } else {
                Style::new()
            };
            Cell::from(Span::styled(format!("{w:.2}"), style))
        }));
        cells.push(Cell::from(top.map(|e| format!("→ E{e}")).unwrap_or_default()));
        Row::new(cells)
    });
    let label_width = labels.iter().map(|l| l.chars().count()).max().unwrap_or(5).max(5);
    let mut widths = vec![Constraint::Length(label_width as u16 + 1)];
    widths.extend((0..gates.per_expert.len()).map(|_| Constraint::Length(5)));
    widths.push(Constraint::Length(10));
    frame.render_widget(
        Table::new(rows, widths)
            .header(Row::new(header).style(Style::new().bold()))
            .block(Block::bordered().title("mean gate weight per true class")),
        table_area,
    );
}
