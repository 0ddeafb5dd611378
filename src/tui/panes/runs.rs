//! Every run of this session and earlier ones: scores (repeats over seeds as mean ± std),
//! delta against a baseline, sorting by any column, hiding and archiving marked runs, and
//! a side-by-side comparison of two rows (config difference and per-class F1).

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, TableState, Wrap};
use ratatui::Frame;

use super::{delta_span, step_selection};
use crate::plan::{differences, short_value};
use crate::tui::known_runs::KnownRuns;
use crate::tui::run_rows::{Column, RowOrder, RunRow, Stat};

/// What the app should do after a key in this pane.
#[derive(Debug, Clone, PartialEq)]
pub enum RunsKey {
    Ignored,
    Handled,
    /// Move these runs to `<runs>/archive/` (confirmed with `y`).
    Archive(Vec<String>),
}

#[derive(Debug, Default)]
pub struct RunsPane {
    pub selected: usize,
    /// Ids of the marked runs (a marked group marks all its runs).
    pub marked: Vec<String>,
    pub baseline: Option<String>,
    pub compare_open: bool,
    pub order: RowOrder,
    /// Runs hidden from the table for this session.
    pub hidden: Vec<String>,
    /// Runs waiting for `y` to be archived.
    pub confirm_archive: Option<Vec<String>>,
    /// Why a key did nothing, shown until the next key.
    pub hint: Option<String>,
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
    pub fn rows(&self, runs: &KnownRuns) -> Vec<RunRow> {
        self.order.rows(runs, &self.hidden)
    }

    fn is_marked(&self, row: &RunRow) -> bool {
        row.ids.iter().all(|id| self.marked.contains(id))
    }

    fn marked_rows(&self, runs: &KnownRuns) -> Vec<RunRow> {
        self.rows(runs).into_iter().filter(|row| self.is_marked(row)).collect()
    }

    pub fn scroll(&mut self, by: isize, runs: &KnownRuns) {
        self.selected = step_selection(self.selected, self.rows(runs).len(), by);
    }

    /// The marked runs, or the selected row's when none is marked.
    fn targets(&self, rows: &[RunRow]) -> Vec<String> {
        if self.marked.is_empty() {
            rows.get(self.selected).map(|row| row.ids.clone()).unwrap_or_default()
        } else {
            self.marked.clone()
        }
    }

    pub fn handle_key(&mut self, key: KeyEvent, runs: &KnownRuns) -> RunsKey {
        self.hint = None;
        if let Some(ids) = self.confirm_archive.take() {
            if matches!(key.code, KeyCode::Char('y') | KeyCode::Char('Y')) {
                self.marked.retain(|id| !ids.contains(id));
                return RunsKey::Archive(ids);
            }
            self.hint = Some("Archiving cancelled.".to_string());
            return RunsKey::Handled;
        }
        if self.compare_open {
            if matches!(key.code, KeyCode::Esc | KeyCode::Enter) {
                self.compare_open = false;
                return RunsKey::Handled;
            }
            return RunsKey::Ignored;
        }
        let rows = self.rows(runs);
        let selected = rows.get(self.selected);
        match key.code {
            KeyCode::Down | KeyCode::Char('j') => self.scroll(1, runs),
            KeyCode::Up | KeyCode::Char('k') => self.scroll(-1, runs),
            KeyCode::Char(' ') => {
                if let Some(row) = selected {
                    if self.is_marked(row) {
                        self.marked.retain(|id| !row.ids.contains(id));
                    } else {
                        self.marked.extend(row.ids.iter().cloned());
                    }
                }
            }
            KeyCode::Char('b') => {
                let id = selected.map(|row| row.id().to_string());
                self.baseline = if self.baseline == id { None } else { id };
            }
            KeyCode::Char('o') => self.order.sort = self.order.sort.next(),
            KeyCode::Char('O') => self.order.descending = !self.order.descending,
            KeyCode::Char('g') => self.order.group_seeds = !self.order.group_seeds,
            KeyCode::Char('h') => {
                let ids = self.targets(&rows);
                self.marked.retain(|id| !ids.contains(id));
                self.hidden.extend(ids);
                self.selected = self.selected.min(self.rows(runs).len().saturating_sub(1));
            }
            KeyCode::Char('H') => self.hidden.clear(),
            KeyCode::Char('a') => {
                let ids = self.targets(&rows);
                if !ids.is_empty() {
                    self.confirm_archive = Some(ids);
                }
            }
            KeyCode::Enter => {
                if self.marked_rows(runs).len() == 2 {
                    self.compare_open = true;
                } else {
                    self.hint = Some("Mark two rows with Space, then press Enter.".to_string());
                }
            }
            _ => return RunsKey::Ignored,
        }
        RunsKey::Handled
    }

    fn title(&self) -> String {
        if let Some(ids) = &self.confirm_archive {
            return format!("Archive {} run(s) to <runs>/archive/? y: yes, any key: no", ids.len());
        }
        if let Some(hint) = &self.hint {
            return hint.clone();
        }
        let order = if self.order.descending { "↓" } else { "↑" };
        let hidden = match self.hidden.len() {
            0 => String::new(),
            n => format!(" · {n} hidden (H shows)"),
        };
        format!(
            "Runs · sort: {} {order} (o/O) · Space mark · Enter compare · b baseline · \
             g seeds {} · h hide · a archive{hidden}",
            self.order.sort.title(),
            if self.order.group_seeds { "grouped" } else { "apart" },
        )
    }

    pub fn draw(&self, frame: &mut Frame, area: Rect, runs: &KnownRuns) {
        if self.compare_open {
            if let [a, b] = &self.marked_rows(runs)[..] {
                draw_comparison(frame, area, runs, a, b);
                return;
            }
        }
        let rows = self.rows(runs);
        let baseline = self
            .baseline
            .as_deref()
            .and_then(|id| rows.iter().find(|row| row.ids.iter().any(|i| i == id)));
        let title = self.title();
        if rows.is_empty() {
            frame.render_widget(
                Paragraph::new("No runs yet.").block(Block::bordered().title(title)),
                area,
            );
            return;
        }
        let header_titles: Vec<String> = ["", "id", "label", "macro F1", "weighted F1", "Δ base"]
            .iter()
            .map(|t| t.to_string())
            .chain(["time".to_string(), "status".to_string()])
            .map(|title| {
                let sorted = Column::ALL.iter().find(|c| c.title() == title);
                match sorted {
                    Some(&column) if column == self.order.sort => format!("{title}*"),
                    _ => title,
                }
            })
            .collect();
        let header = Row::new(header_titles).style(Style::new().bold());
        let table_rows = rows.iter().map(|row| {
            let mut mark = String::new();
            if self.is_marked(row) {
                mark.push('*');
            }
            let is_base = baseline.is_some_and(|b| b.ids == row.ids);
            if is_base {
                mark.push('B');
            }
            let mean = |stat: Option<Stat>| stat.map(|s| s.mean);
            let delta = match (mean(row.macro_f1), baseline.and_then(|b| mean(b.macro_f1))) {
                (Some(_), Some(_)) if is_base => Line::from("base"),
                (Some(value), Some(base)) => Line::from(delta_span(value - base)),
                _ => Line::from("—"),
            };
            let status_style = match row.status.as_str() {
                "failed" => Style::new().fg(Color::Red),
                "running" | "preparing" => Style::new().fg(Color::Yellow),
                "finished" => Style::new().fg(Color::Green),
                _ => Style::new(),
            };
            let id = if row.is_group() {
                format!("{} +{}", row.id(), row.ids.len() - 1)
            } else {
                row.id().to_string()
            };
            Row::new(vec![
                Cell::from(mark),
                Cell::from(id),
                Cell::from(row.label.clone()),
                Cell::from(Stat::text(row.macro_f1)),
                Cell::from(Stat::text(row.weighted_f1)),
                Cell::from(delta),
                Cell::from(duration(row.seconds)),
                Cell::from(Span::styled(row.status.clone(), status_style)),
            ])
        });
        // The scores and the status keep their width; the id and the label share what is
        // left (at 80 columns the id is cut to its timestamp rather than losing the status).
        let widths = [
            Constraint::Length(2),
            Constraint::Fill(3),
            Constraint::Fill(2),
            Constraint::Length(11),
            Constraint::Length(11),
            Constraint::Length(6),
            Constraint::Length(6),
            Constraint::Length(9),
        ];
        let mut state = TableState::default().with_selected(Some(self.selected));
        frame.render_stateful_widget(
            Table::new(table_rows, widths)
                .header(header)
                .block(Block::bordered().title(title))
                .highlight_symbol("▶ ")
                .row_highlight_style(Style::new().bg(Color::DarkGray)),
            area,
            &mut state,
        );
    }
}

/// The config keys in which the two rows' (first) runs differ, as `key: a → b` lines.
fn config_difference(runs: &KnownRuns, a: &RunRow, b: &RunRow) -> Vec<Line<'static>> {
    let config = |row: &RunRow| runs.get(row.id()).and_then(|run| run.config.clone());
    let (Some(ca), Some(cb)) = (config(a), config(b)) else {
        return vec![Line::from("config: unknown for one of the runs")];
    };
    let value = |v: &Option<toml::Value>| v.as_ref().map_or("none".to_string(), short_value);
    let lines: Vec<Line> = differences(&ca, &cb)
        .iter()
        .filter(|d| !(a.is_group() && b.is_group() && d.key == "train.seed"))
        .map(|d| Line::from(format!("{}: {} → {}", d.key, value(&d.base), value(&d.run))))
        .collect();
    if lines.is_empty() {
        vec![Line::from("same config")]
    } else {
        lines
    }
}

fn draw_comparison(frame: &mut Frame, area: Rect, runs: &KnownRuns, a: &RunRow, b: &RunRow) {
    let difference = config_difference(runs, a, b);
    let [diff_area, table_area] = Layout::vertical([
        Constraint::Length(difference.len().min(8) as u16 + 2),
        Constraint::Min(4),
    ])
    .areas(area);
    frame.render_widget(
        Paragraph::new(difference)
            .wrap(Wrap { trim: true })
            .block(Block::bordered().title("config difference: A → B")),
        diff_area,
    );
    let mut labels: Vec<&str> = a.per_class.iter().map(|(l, _)| l.as_str()).collect();
    for (label, _) in &b.per_class {
        if !labels.contains(&label.as_str()) {
            labels.push(label);
        }
    }
    let f1_of = |row: &RunRow, label: &str| {
        row.per_class.iter().find(|(l, _)| l == label).map(|(_, f1)| *f1)
    };
    let score = |value: Option<f64>| value.map_or("—".to_string(), |v| format!("{v:.3}"));
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
    for (name, sa, sb) in
        [("macro F1", a.macro_f1, b.macro_f1), ("weighted F1", a.weighted_f1, b.weighted_f1)]
    {
        let delta = match (sa, sb) {
            (Some(x), Some(y)) => Line::from(delta_span(y.mean - x.mean)),
            _ => Line::from("—"),
        };
        rows.push(
            Row::new(vec![
                Cell::from(name),
                Cell::from(Stat::text(sa)),
                Cell::from(Stat::text(sb)),
                Cell::from(delta),
            ])
            .style(Style::new().bold()),
        );
    }
    let header = Row::new(vec![
        Cell::from("class"),
        Cell::from(format!("A {}", a.id())),
        Cell::from(format!("B {}", b.id())),
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
        table_area,
    );
}
