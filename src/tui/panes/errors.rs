//! The latest epoch's misclassified validation samples: filter, search, sort, inspect.

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, List, ListItem, ListState, Paragraph, Wrap};
use ratatui::Frame;

use super::{bar, step_selection};
use crate::events::Misclassified;
use crate::tui::confusion::ErrorCell;
use crate::tui::figurative::{figurative_cues, looks_figurative};
use crate::tui::image_preview::ImagePreview;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortOrder {
    #[default]
    MostConfidentFirst,
    LeastConfidentFirst,
}

#[derive(Default)]
pub struct ErrorsPane {
    /// Position in the filtered list.
    pub selected: usize,
    pub true_filter: Option<usize>,
    pub predicted_filter: Option<usize>,
    /// A cell of the Confusion pane: only the samples that make that mistake.
    pub cell: Option<ErrorCell>,
    /// The applied search; while typing it updates live.
    pub search: String,
    /// The search before `/` was pressed, restored by Esc; `Some` while typing.
    search_before: Option<String>,
    pub sort: SortOrder,
    pub figurative_only: bool,
    pub detail_open: bool,
    pub preview: ImagePreview,
}

/// How sure the model was of its mistake: the highest probability it gave a wrong label,
/// or, when it only missed labels, how far below certainty the missed ones were.
pub fn confidence(sample: &Misclassified) -> f32 {
    let prob = |i: &usize| sample.probabilities.get(*i).copied().unwrap_or(0.0);
    let wrong = sample.predicted.iter().filter(|i| !sample.truth.contains(i)).map(prob);
    if let Some(max) = wrong.reduce(f32::max) {
        return max;
    }
    let missed = sample.truth.iter().filter(|i| !sample.predicted.contains(i)).map(prob);
    missed.reduce(f32::min).map_or(0.0, |p| 1.0 - p)
}

fn label_list(indices: &[usize], labels: &[String], probabilities: &[f32]) -> String {
    if indices.is_empty() {
        return "(none)".to_string();
    }
    indices
        .iter()
        .map(|&i| {
            let name = labels.get(i).cloned().unwrap_or(format!("#{i}"));
            match probabilities.get(i) {
                Some(p) => format!("{name} ({p:.2})"),
                None => name,
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl ErrorsPane {
    pub fn is_typing(&self) -> bool {
        self.search_before.is_some()
    }

    /// Indices into `items` of the samples that pass the filters, in display order.
    pub fn visible(&self, items: &[Misclassified]) -> Vec<usize> {
        let needle = self.search.to_lowercase();
        let mut shown: Vec<usize> = items
            .iter()
            .enumerate()
            .filter(|(_, m)| self.true_filter.is_none_or(|c| m.truth.contains(&c)))
            .filter(|(_, m)| self.predicted_filter.is_none_or(|c| m.predicted.contains(&c)))
            .filter(|(_, m)| self.cell.is_none_or(|cell| cell.matches(m)))
            .filter(|(_, m)| !self.figurative_only || looks_figurative(m))
            .filter(|(_, m)| {
                needle.is_empty()
                    || m.text.to_lowercase().contains(&needle)
                    || m.sample_id.to_lowercase().contains(&needle)
                    || m.reasoning.as_deref().is_some_and(|r| r.to_lowercase().contains(&needle))
            })
            .map(|(i, _)| i)
            .collect();
        shown.sort_by(|&a, &b| {
            let order = confidence(&items[b]).total_cmp(&confidence(&items[a]));
            match self.sort {
                SortOrder::MostConfidentFirst => order,
                SortOrder::LeastConfidentFirst => order.reverse(),
            }
        });
        shown
    }

    /// Shows exactly the samples of `cell`, with the other filters cleared.
    pub fn show_cell(&mut self, cell: ErrorCell) {
        self.clear_filters();
        self.cell = Some(cell);
        self.detail_open = false;
    }

    fn clear_filters(&mut self) {
        self.true_filter = None;
        self.predicted_filter = None;
        self.cell = None;
        self.figurative_only = false;
        self.search.clear();
        self.selected = 0;
    }

    /// The sample under the cursor, if any passes the filters.
    pub fn selected_sample<'a>(&self, items: &'a [Misclassified]) -> Option<&'a Misclassified> {
        self.visible(items).get(self.selected).map(|&i| &items[i])
    }

    pub fn scroll(&mut self, by: isize, items: &[Misclassified]) {
        self.selected = step_selection(self.selected, self.visible(items).len(), by);
    }

    /// Handles a key; `false` when the key is not the pane's.
    pub fn handle_key(&mut self, key: KeyEvent, items: &[Misclassified], classes: usize) -> bool {
        if let Some(before) = &self.search_before {
            match key.code {
                KeyCode::Enter => self.search_before = None,
                KeyCode::Esc => {
                    self.search = before.clone();
                    self.search_before = None;
                }
                KeyCode::Backspace => {
                    self.search.pop();
                }
                KeyCode::Char(c) => self.search.push(c),
                _ => return true,
            }
            self.selected = 0;
            return true;
        }
        let next_class = |filter: Option<usize>| match filter {
            None if classes > 0 => Some(0),
            Some(c) if c + 1 < classes => Some(c + 1),
            _ => None,
        };
        match key.code {
            KeyCode::Down | KeyCode::Char('j') => self.scroll(1, items),
            KeyCode::Up | KeyCode::Char('k') => self.scroll(-1, items),
            KeyCode::PageDown => self.scroll(10, items),
            KeyCode::PageUp => self.scroll(-10, items),
            KeyCode::Home | KeyCode::Char('g') => self.selected = 0,
            KeyCode::End | KeyCode::Char('G') => self.scroll(isize::MAX, items),
            KeyCode::Enter if !self.visible(items).is_empty() => self.detail_open = true,
            KeyCode::Esc if self.detail_open => self.detail_open = false,
            KeyCode::Char('/') => {
                self.search_before = Some(self.search.clone());
                self.search.clear();
                self.detail_open = false;
            }
            KeyCode::Char('t') => {
                self.true_filter = next_class(self.true_filter);
                self.selected = 0;
            }
            KeyCode::Char('p') => {
                self.predicted_filter = next_class(self.predicted_filter);
                self.selected = 0;
            }
            KeyCode::Char('f') => {
                self.figurative_only = !self.figurative_only;
                self.selected = 0;
            }
            KeyCode::Char('o') => {
                self.sort = match self.sort {
                    SortOrder::MostConfidentFirst => SortOrder::LeastConfidentFirst,
                    SortOrder::LeastConfidentFirst => SortOrder::MostConfidentFirst,
                };
                self.selected = 0;
            }
            KeyCode::Char('c') => self.clear_filters(),
            _ => return false,
        }
        true
    }

    fn filter_line(&self, labels: &[String], shown: usize, total: usize) -> Line<'static> {
        let class = |filter: Option<usize>| {
            filter.map_or("any".to_string(), |c| labels.get(c).cloned().unwrap_or(format!("#{c}")))
        };
        let sort = match self.sort {
            SortOrder::MostConfidentFirst => "most confident first",
            SortOrder::LeastConfidentFirst => "least confident first",
        };
        let figurative = if self.figurative_only { "on" } else { "off" };
        let search = if self.is_typing() {
            Span::styled(format!("/{}▏", self.search), Style::new().fg(Color::Yellow))
        } else if self.search.is_empty() {
            Span::raw("—")
        } else {
            Span::raw(format!("\"{}\"", self.search))
        };
        let cell = match self.cell {
            Some(cell) => Span::styled(
                format!("cell: {} (c clears) · ", cell.describe(labels)),
                Style::new().fg(Color::Yellow),
            ),
            None => Span::raw(""),
        };
        Line::from(vec![
            cell,
            Span::raw(format!(
                "{shown}/{total} shown · true(t): {} · predicted(p): {} · sort(o): {sort} · \
                 figurative/sarcastic (heuristic, f): {figurative} · search(/): ",
                class(self.true_filter),
                class(self.predicted_filter)
            )),
            search,
        ])
    }

    pub fn draw(
        &mut self,
        frame: &mut Frame,
        area: Rect,
        items: &[Misclassified],
        labels: &[String],
    ) {
        let visible = self.visible(items);
        self.selected = self.selected.min(visible.len().saturating_sub(1));
        let [filters, body] =
            Layout::vertical([Constraint::Length(2), Constraint::Min(3)]).areas(area);
        frame.render_widget(
            Paragraph::new(self.filter_line(labels, visible.len(), items.len()))
                .wrap(Wrap { trim: true }),
            filters,
        );
        if items.is_empty() {
            frame.render_widget(
                Paragraph::new("No misclassified samples in the latest epoch (or no epoch yet).")
                    .block(Block::bordered().title("Errors")),
                body,
            );
            return;
        }
        let selected = visible.get(self.selected).map(|&i| &items[i]);
        if self.detail_open {
            if let Some(sample) = selected {
                self.draw_detail(frame, body, sample, labels);
                return;
            }
        }

        let [list_area, preview_area] =
            Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)])
                .areas(body);
        let list_items: Vec<ListItem> = visible
            .iter()
            .map(|&i| {
                let m = &items[i];
                let text: String = m.text.chars().take(60).collect::<String>().replace('\n', " ");
                ListItem::new(Line::from(vec![
                    Span::styled(format!("{:.2} ", confidence(m)), Style::new().fg(Color::Red)),
                    Span::raw(format!(
                        "{} → {}  ",
                        label_list(&m.truth, labels, &[]),
                        label_list(&m.predicted, labels, &[])
                    )),
                    Span::styled(text, Style::new().fg(Color::Gray)),
                ]))
            })
            .collect();
        let mut state = ListState::default().with_selected(selected.map(|_| self.selected));
        frame.render_stateful_widget(
            List::new(list_items)
                .block(Block::bordered().title("Errors (Enter: details)"))
                .highlight_symbol("▶ ")
                .highlight_style(Style::new().bold().bg(Color::DarkGray)),
            list_area,
            &mut state,
        );
        let summary = match selected {
            Some(sample) => sample_lines(sample, labels),
            None => vec![Line::from("Nothing matches the filters (c clears them).")],
        };
        frame.render_widget(
            Paragraph::new(summary)
                .wrap(Wrap { trim: true })
                .block(Block::bordered().title("sample")),
            preview_area,
        );
    }

    fn draw_detail(
        &mut self,
        frame: &mut Frame,
        area: Rect,
        sample: &Misclassified,
        labels: &[String],
    ) {
        let [text_area, image_area] =
            Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)])
                .areas(area);
        let mut lines = sample_lines(sample, labels);
        lines.push(Line::from(""));
        lines.push(Line::from("probabilities:").bold());
        let width = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0);
        for (i, p) in sample.probabilities.iter().enumerate() {
            let name = labels.get(i).cloned().unwrap_or(format!("#{i}"));
            let marker = match (sample.truth.contains(&i), sample.predicted.contains(&i)) {
                (true, true) => "✓",
                (true, false) => "missed",
                (false, true) => "wrong",
                (false, false) => "",
            };
            lines
                .push(Line::from(format!("{name:>width$} {} {p:.2} {marker}", bar(*p as f64, 12))));
        }
        frame.render_widget(
            Paragraph::new(lines)
                .wrap(Wrap { trim: false })
                .block(Block::bordered().title(format!("{} (Esc: back)", sample.sample_id))),
            text_area,
        );
        self.preview.draw(frame, image_area, sample.image.as_deref());
    }
}

/// The text, labels and reasoning of a sample.
fn sample_lines(sample: &Misclassified, labels: &[String]) -> Vec<Line<'static>> {
    let mut lines = vec![
        Line::from(vec![
            Span::styled("true: ", Style::new().bold()),
            Span::styled(
                label_list(&sample.truth, labels, &sample.probabilities),
                Style::new().fg(Color::Green),
            ),
        ]),
        Line::from(vec![
            Span::styled("predicted: ", Style::new().bold()),
            Span::styled(
                label_list(&sample.predicted, labels, &sample.probabilities),
                Style::new().fg(Color::Red),
            ),
        ]),
        Line::from(format!("confidence of the mistake: {:.2}", confidence(sample))),
        Line::from(""),
        Line::from("OCR text:").bold(),
        Line::from(if sample.text.trim().is_empty() {
            "(no text)".to_string()
        } else {
            sample.text.clone()
        }),
    ];
    if let Some(reasoning) = sample.reasoning.as_deref().filter(|r| !r.trim().is_empty()) {
        lines.push(Line::from(""));
        lines.push(Line::from("reasoning:").bold());
        lines.push(Line::from(reasoning.to_string()));
    }
    if let Some(cues) = figurative_cues(sample) {
        let words: Vec<String> = cues.matched.iter().map(|w| format!("“{w}”")).collect();
        lines.push(Line::from(""));
        lines.push(Line::styled(
            format!(
                "figurative/sarcastic (heuristic), from the {}: {}",
                cues.source,
                words.join(", ")
            ),
            Style::new().fg(Color::Magenta),
        ));
    }
    lines
}
