//! The latest epoch's confusion: the matrix with counts and row-normalised rates for
//! single-label data; per-label TP/FP/FN and the most frequent mistakes for multi-label.
//! Enter on a cell opens the Errors pane filtered to exactly its samples.

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Cell, List, ListItem, ListState, Paragraph, Row, Table};
use ratatui::Frame;

use super::step_selection;
use crate::tui::confusion::{frequent_mistakes, label_counts, row_rates, ErrorCell};
use crate::tui::run_view::RunView;

/// How many of the most frequent multi-label mistakes are listed.
const TOP_MISTAKES: usize = 12;

/// What the app should do after a key in this pane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfusionKey {
    Ignored,
    Handled,
    /// Show the samples of this cell in the Errors pane.
    Open(ErrorCell),
}

#[derive(Debug, Default)]
pub struct ConfusionPane {
    /// Single-label: the selected cell (`row` true class, `col` predicted class).
    pub row: usize,
    pub col: usize,
    /// Multi-label: the selected line of the frequent mistakes.
    pub selected: usize,
    /// Why Enter did nothing, shown until the next key.
    pub hint: Option<String>,
}

impl ConfusionPane {
    pub fn handle_key(&mut self, key: KeyEvent, view: &RunView) -> ConfusionKey {
        self.hint = None;
        let Some(epoch) = view.latest_epoch() else { return ConfusionKey::Ignored };
        let classes = view.labels().len();
        if epoch.metrics.confusion.is_some() {
            match key.code {
                KeyCode::Down | KeyCode::Char('j') => {
                    self.row = step_selection(self.row, classes, 1)
                }
                KeyCode::Up | KeyCode::Char('k') => {
                    self.row = step_selection(self.row, classes, -1)
                }
                KeyCode::Right | KeyCode::Char('l') => {
                    self.col = step_selection(self.col, classes, 1)
                }
                KeyCode::Left | KeyCode::Char('h') => {
                    self.col = step_selection(self.col, classes, -1)
                }
                KeyCode::Enter if self.row == self.col => {
                    self.hint = Some("Correct predictions are not listed as errors.".to_string())
                }
                KeyCode::Enter => {
                    return ConfusionKey::Open(ErrorCell::Confused {
                        truth: self.row,
                        predicted: self.col,
                    })
                }
                _ => return ConfusionKey::Ignored,
            }
            return ConfusionKey::Handled;
        }
        let mistakes = frequent_mistakes(&epoch.misclassified, TOP_MISTAKES);
        match key.code {
            KeyCode::Down | KeyCode::Char('j') => {
                self.selected = step_selection(self.selected, mistakes.len(), 1)
            }
            KeyCode::Up | KeyCode::Char('k') => {
                self.selected = step_selection(self.selected, mistakes.len(), -1)
            }
            KeyCode::Enter => match mistakes.get(self.selected) {
                Some((cell, _)) => return ConfusionKey::Open(*cell),
                None => self.hint = Some("No mistakes listed in the latest epoch.".to_string()),
            },
            _ => return ConfusionKey::Ignored,
        }
        ConfusionKey::Handled
    }

    pub fn draw(&self, frame: &mut Frame, area: Rect, view: &RunView) {
        let Some(epoch) = view.latest_epoch() else {
            frame.render_widget(
                Paragraph::new("No validation epoch yet.")
                    .block(Block::bordered().title("Confusion")),
                area,
            );
            return;
        };
        let labels = view.labels();
        let [body, note] =
            Layout::vertical([Constraint::Min(4), Constraint::Length(1)]).areas(area);
        let help = self.hint.clone().unwrap_or_else(|| {
            "arrows/hjkl move · Enter shows the cell's samples in Errors".to_string()
        });
        frame.render_widget(Paragraph::new(help), note);
        match &epoch.metrics.confusion {
            Some(confusion) => self.draw_matrix(frame, body, confusion, labels, epoch.epoch),
            None => self.draw_multi_label(frame, body, view),
        }
    }

    fn draw_matrix(
        &self,
        frame: &mut Frame,
        area: Rect,
        confusion: &[Vec<usize>],
        labels: &[String],
        epoch: usize,
    ) {
        let rates = row_rates(confusion);
        let short = |c: usize| -> String {
            labels.get(c).map_or(format!("#{c}"), |l| l.chars().take(9).collect())
        };
        let header = Row::new(
            std::iter::once("true \\ predicted".to_string())
                .chain((0..confusion.len()).map(short))
                .map(Cell::from),
        )
        .style(Style::new().add_modifier(Modifier::BOLD));
        let rows = confusion.iter().enumerate().map(|(t, row)| {
            let cells = row.iter().enumerate().map(|(p, &n)| {
                let rate = rates[t][p];
                let mut style = match (t == p, n) {
                    (true, _) => Style::new().fg(Color::Green),
                    (false, 0) => Style::new().fg(Color::DarkGray),
                    (false, _) if rate >= 0.2 => Style::new().fg(Color::Red),
                    (false, _) => Style::new().fg(Color::Yellow),
                };
                if (t, p) == (self.row, self.col) {
                    style = style.bg(Color::DarkGray).add_modifier(Modifier::BOLD);
                }
                Cell::from(format!("{n:>4} {:>3.0}%", rate * 100.0)).style(style)
            });
            Row::new(
                std::iter::once(Cell::from(labels.get(t).cloned().unwrap_or_default()))
                    .chain(cells),
            )
        });
        let widths = std::iter::once(Constraint::Length(22))
            .chain(confusion.iter().map(|_| Constraint::Length(10)));
        frame.render_widget(
            Table::new(rows, widths).header(header).block(Block::bordered().title(format!(
                "Confusion · epoch {epoch} · count and share of the true class (row)"
            ))),
            area,
        );
    }

    fn draw_multi_label(&self, frame: &mut Frame, area: Rect, view: &RunView) {
        let Some(epoch) = view.latest_epoch() else { return };
        let labels = view.labels();
        let [counts_area, mistakes_area] =
            Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
                .areas(area);
        let counts = label_counts(&epoch.metrics, &epoch.misclassified);
        let rows = counts.iter().enumerate().map(|(c, n)| {
            Row::new(vec![
                Cell::from(labels.get(c).cloned().unwrap_or(format!("#{c}"))),
                Cell::from(n.tp.to_string()),
                Cell::from(n.fp.to_string()),
                Cell::from(n.fn_.to_string()),
            ])
        });
        let widths = [
            Constraint::Min(12),
            Constraint::Length(5),
            Constraint::Length(5),
            Constraint::Length(5),
        ];
        frame.render_widget(
            Table::new(rows, widths)
                .header(
                    Row::new(["label", "TP", "FP", "FN"])
                        .style(Style::new().add_modifier(Modifier::BOLD)),
                )
                .block(Block::bordered().title(format!("Per label · epoch {}", epoch.epoch))),
            counts_area,
        );
        let mistakes = frequent_mistakes(&epoch.misclassified, TOP_MISTAKES);
        let items: Vec<ListItem> = mistakes
            .iter()
            .map(|(cell, n)| {
                ListItem::new(Line::from(format!("{n:>4}  {}", cell.describe(labels))))
            })
            .collect();
        let mut state =
            ListState::default().with_selected((!items.is_empty()).then_some(self.selected));
        frame.render_stateful_widget(
            List::new(items)
                .block(Block::bordered().title(format!(
                    "Most frequent mistakes (of {} listed samples)",
                    epoch.misclassified.len()
                )))
                .highlight_symbol("» ")
                .highlight_style(Style::new().bg(Color::DarkGray)),
            mistakes_area,
            &mut state,
        );
    }
}
