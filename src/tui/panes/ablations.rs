//! The ablation switches as checkboxes, and the commands that start runs with them.

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::Line;
use ratatui::widgets::{Block, List, ListItem, ListState, Paragraph, Wrap};
use ratatui::Frame;

use super::step_selection;
use crate::config::{Ablation, ABLATION_SWITCHES};
use crate::plan::leave_one_out_modules;

/// The rows after the switches.
const START_ROW: usize = ABLATION_SWITCHES.len();
const SWEEP_ROW: usize = START_ROW + 1;
const ROWS: usize = SWEEP_ROW + 1;

/// What the app should do after a key in this pane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AblationCommand {
    Start(Ablation),
    Sweep,
}

#[derive(Debug, Default)]
pub struct AblationsPane {
    pub ablation: Ablation,
    pub cursor: usize,
}

impl AblationsPane {
    pub fn new(ablation: Ablation) -> Self {
        Self { ablation, cursor: 0 }
    }

    pub fn scroll(&mut self, by: isize) {
        self.cursor = step_selection(self.cursor, ROWS, by);
    }

    /// Handles a key: `None` when it is not the pane's, `Some(None)` when it only moved or
    /// toggled, `Some(Some(command))` when a run should start.
    pub fn handle_key(&mut self, key: KeyEvent) -> Option<Option<AblationCommand>> {
        match key.code {
            KeyCode::Down | KeyCode::Char('j') => self.scroll(1),
            KeyCode::Up | KeyCode::Char('k') => self.scroll(-1),
            KeyCode::Char(' ') | KeyCode::Enter if self.cursor < START_ROW => {
                let name = ABLATION_SWITCHES[self.cursor];
                let on = self.ablation.get(name).expect("listed switches exist");
                self.ablation.set(name, !on).expect("listed switches exist");
            }
            KeyCode::Enter if self.cursor == START_ROW => {
                return Some(Some(AblationCommand::Start(self.ablation)))
            }
            KeyCode::Char('r') => return Some(Some(AblationCommand::Start(self.ablation))),
            KeyCode::Enter if self.cursor == SWEEP_ROW => {
                return Some(Some(AblationCommand::Sweep))
            }
            KeyCode::Char('s') => return Some(Some(AblationCommand::Sweep)),
            _ => return None,
        }
        Some(None)
    }

    /// `launch_note` says why runs cannot start (watch mode) or what is queued.
    pub fn draw(&self, frame: &mut Frame, area: Rect, launch_note: &str) {
        let [list_area, note_area] =
            Layout::vertical([Constraint::Length(ROWS as u16 + 2), Constraint::Min(2)]).areas(area);
        let mut items: Vec<ListItem> = ABLATION_SWITCHES
            .iter()
            .map(|name| {
                let on = self.ablation.get(name).unwrap_or(false);
                let style =
                    if on { Style::new().fg(Color::Green) } else { Style::new().fg(Color::Red) };
                ListItem::new(Line::styled(
                    format!("[{}] {name}", if on { 'x' } else { ' ' }),
                    style,
                ))
            })
            .collect();
        items.push(ListItem::new(Line::from("▶ Start run with these switches (r)").bold()));
        items.push(ListItem::new(Line::from(sweep_item()).bold()));
        let mut state = ListState::default().with_selected(Some(self.cursor));
        frame.render_stateful_widget(
            List::new(items)
                .block(
                    Block::bordered()
                        .title(format!("Ablations · next run: {}", self.ablation.short_label())),
                )
                .highlight_symbol("» ")
                .highlight_style(Style::new().bg(Color::DarkGray)),
            list_area,
            &mut state,
        );
        frame.render_widget(
            Paragraph::new(format!(
                "j/k move · Space toggles · r or Enter on Start starts a run · s queues the leave-one-out sweep\n{launch_note}"
            ))
            .wrap(Wrap { trim: true }),
            note_area,
        );
    }
}

/// The sweep's row: its full run (with the opt-in modules it adds) and what it removes.
/// Short enough for an 80-column terminal; the note below names it leave-one-out.
fn sweep_item() -> String {
    let added: Vec<String> = leave_one_out_modules()
        .filter(|name| Ablation::default().get(name) == Some(false))
        .map(|name| format!("+{name}"))
        .collect();
    let added = if added.is_empty() { String::new() } else { format!(" ({})", added.join(" ")) };
    let removed: Vec<String> = leave_one_out_modules().map(|name| format!("-{name}")).collect();
    format!("▶ Sweep (s): all on{added}, then {}", removed.join(", "))
}
