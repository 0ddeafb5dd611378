//! Every run of this session and earlier ones: scores, delta against a baseline, and a
//! side-by-side per-class comparison of two runs.

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, TableState};
use ratatui::Frame;

use super::{delta_span, step_selection};
use crate::tui::known_runs::{KnownRun, KnownRuns};

#[derive(Debug, Default)]
pub struct RunsPane {
    pub selected: usize,
    /// Ids of the runs marked for comparison, oldest mark first (at most two).
    pub marked: Vec<String>,
    pub baseline: Option<String>,
    pub compare_open: bool,
    /// Why Enter did nothing, shown until the next key.
    pub hint: Option<String>,
}

fn score(value: Option<f64>) -> String {
    value.map_or("—".to_string(), |v| format!("{v:.3}"))
}

fn duration(seconds: Option<f64>) -> String {
    match seconds {
        None => "—".to_string(),
        Some(s) if s < 60.0 => format!("{s:.0}s"),
        Some(s) if s < 3600.0 => format!("{}m{:02}s", (s / 60.0) as u64, (s % 60.0) as u64),
        Some(s) => format!("{}h{:02}m", (s / 3600.0) as u64, ((s % 3600.0) / 60.0) as u64),
    }
}

impl RunsPane {
    pub fn scroll(&mut self, by: isize, runs: &KnownRuns) {
        self.selected = step_selection(self.selected, runs.rows.len(), by);
    }

    pub fn handle_key(&mut self, key: KeyEvent, runs: &KnownRuns) -> bool {
        self.hint = None;
        if self.compare_open {
            if matches!(key.code, KeyCode::Esc | KeyCode::Enter) {
                self.compare_open = false;
                return true;
            }
            return false;
        }
        let selected_id = runs.rows.get(self.selected).map(|row| row.id.clone());
        match key.code {
            KeyCode::Down | KeyCode::Char('j') => self.scroll(1, runs),
            KeyCode::Up | KeyCode::Char('k') => self.scroll(-1, runs),
            KeyCode::Char(' ') => {
                if let Some(id) = selected_id {
                    if let Some(at) = self.marked.iter().position(|m| *m == id) {
                        self.marked.remove(at);
                    } else {
                        if self.marked.len() == 2 {
                            self.marked.remove(0);
                        }
                        self.marked.push(id);
                    }
                }
            }
            KeyCode::Char('b') => {
                self.baseline = if self.baseline == selected_id { None } else { selected_id };
            }
            KeyCode::Enter => {
                if self.marked.len() == 2 {
                    self.compare_open = true;
                } else {
                    self.hint = Some("Mark two runs with Space, then press Enter.".to_string());
                }
            }
            _ => return false,
        }
        true
    }

    pub fn draw(&self, frame: &mut Frame, area: Rect, runs: &KnownRuns) {
        if self.compare_open {
            let pair: Vec<&KnownRun> = self.marked.iter().filter_map(|id| runs.get(id)).collect();
            if let [a, b] = pair[..] {
                draw_comparison(frame, area, a, b);
                return;
            }
        }
        let baseline = self.baseline.as_deref().and_then(|id| runs.get(id));
        let header =
            Row::new(["", "id", "switches", "macro F1", "weighted F1", "Δ base", "time", "status"])
                .style(Style::new().bold());
        let rows = runs.rows.iter().map(|row| {
            let mut mark = String::new();
            if self.marked.contains(&row.id) {
                mark.push('*');
            }
            if self.baseline.as_deref() == Some(row.id.as_str()) {
                mark.push('B');
            }
            let delta = match (row.macro_f1, baseline.and_then(|b| b.macro_f1)) {
                (Some(_), Some(_)) if self.baseline.as_deref() == Some(row.id.as_str()) => {
                    Line::from("base")
                }
                (Some(value), Some(base)) => Line::from(delta_span(value - base)),
                _ => Line::from("—"),
            };
            let status_style = match row.status.label() {
                "failed" => Style::new().fg(Color::Red),
                "running" | "preparing" => Style::new().fg(Color::Yellow),
                "finished" => Style::new().fg(Color::Green),
                _ => Style::new(),
            };
            Row::new(vec![
                Cell::from(mark),
                Cell::from(row.id.clone()),
                Cell::from(row.label.clone()),
                Cell::from(score(row.macro_f1)),
                Cell::from(score(row.weighted_f1)),
                Cell::from(delta),
                Cell::from(duration(row.seconds)),
                Cell::from(Span::styled(row.status.label(), status_style)),
            ])
        });
        // The scores and the status keep their width; the id and the switches share what
        // is left (at 80 columns the id is cut to its timestamp rather than losing the status).
        let widths = [
            Constraint::Length(2),
            Constraint::Fill(3),
            Constraint::Fill(2),
            Constraint::Length(8),
            Constraint::Length(11),
            Constraint::Length(6),
            Constraint::Length(6),
            Constraint::Length(11),
        ];
        let title = match &self.hint {
            Some(hint) => hint.clone(),
            None => "Runs · Space mark (2) · Enter compare · b baseline".to_string(),
        };
        let mut state = TableState::default().with_selected(Some(self.selected));
        if runs.rows.is_empty() {
            frame.render_widget(
                Paragraph::new("No runs yet.").block(Block::bordered().title(title)),
                area,
            );
            return;
        }
        frame.render_stateful_widget(
            Table::new(rows, widths)
                .header(header)
                .block(Block::bordered().title(title))
                .highlight_symbol("▶ ")
                .row_highlight_style(Style::new().bg(Color::DarkGray)),
            area,
            &mut state,
        );
    }
}

fn draw_comparison(frame: &mut Frame, area: Rect, a: &KnownRun, b: &KnownRun) {
    let mut labels: Vec<&str> = a.per_class.iter().map(|(l, _)| l.as_str()).collect();
    for (label, _) in &b.per_class {
        if !labels.contains(&label.as_str()) {
            labels.push(label);
        }
    }
    let f1_of = |row: &KnownRun, label: &str| {
        row.per_class.iter().find(|(l, _)| l == label).map(|(_, f1)| *f1)
    };
    let mut rows: Vec<Row> = labels
        .iter()
        .map(|&label| {
            let (fa, fb) = (f1_of(a, label), f1_of(b, label));
            let delta = match (fa, fb) {
                (Some(x), Some(y)) => Line::from(delta_span(y - x)),
                _ => Line::from("—"),
            };
            Row::new(vec![
                Cell::from(label.to_string()),
                Cell::from(score(fa)),
                Cell::from(score(fb)),
                Cell::from(delta),
            ])
        })
        .collect();
    for (name, fa, fb) in
        [("macro F1", a.macro_f1, b.macro_f1), ("weighted F1", a.weighted_f1, b.weighted_f1)]
    {
        let delta = match (fa, fb) {
            (Some(x), Some(y)) => Line::from(delta_span(y - x)),
            _ => Line::from("—"),
        };
        rows.push(
            Row::new(vec![
                Cell::from(name),
                Cell::from(score(fa)),
                Cell::from(score(fb)),
                Cell::from(delta),
            ])
            .style(Style::new().bold()),
        );
    }
    let header = Row::new(vec![
        Cell::from("class"),
        Cell::from(format!("A {}", a.id)),
        Cell::from(format!("B {}", b.id)),
        Cell::from("B − A"),
    ])
    .style(Style::new().bold());
    let widths =
        [Constraint::Min(16), Constraint::Min(16), Constraint::Min(16), Constraint::Length(8)];
    frame.render_widget(
        Table::new(rows, widths).header(header).block(
            Block::bordered()
                .title(format!("per-class F1: A = {} vs B = {} (Esc: back)", a.label, b.label)),
        ),
        area,
    );
}
