//! The next run's setup: the ablation switches as checkboxes, editable values of the keys
//! people change between runs, the number of seeds, and the commands that start runs.

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, List, ListItem, ListState, Paragraph, Wrap};
use ratatui::Frame;

use super::step_selection;
use crate::config::{Ablation, Config, ABLATION_SWITCHES};
use crate::plan::leave_one_out_modules;
use crate::tui::next_run::{NextRun, KNOBS};

/// The rows: the switches, the values, the seeds, then the two commands.
const FIRST_KNOB_ROW: usize = ABLATION_SWITCHES.len();
const SEEDS_ROW: usize = FIRST_KNOB_ROW + KNOBS.len();
pub const START_ROW: usize = SEEDS_ROW + 1;
const SWEEP_ROW: usize = START_ROW + 1;
const ROWS: usize = SWEEP_ROW + 1;

/// What the app should do after a key in this pane.
#[derive(Debug, Clone, PartialEq)]
pub enum AblationCommand {
    /// Start these runs (one per seed) one after another.
    Start(Vec<Config>),
    /// Queue the leave-one-out sweep around this config.
    Sweep(Box<Config>),
    /// The setup cannot start (watch mode); the message says why.
    Refused(String),
}

/// A value being typed: the row's text, and why the last Enter refused it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Editor {
    pub text: String,
    pub error: Option<String>,
}

#[derive(Debug, Default)]
pub struct AblationsPane {
    pub next: NextRun,
    pub cursor: usize,
    /// Open while a value (or the seed count) is typed.
    pub editor: Option<Editor>,
}

impl AblationsPane {
    pub fn new(base: Config) -> Self {
        Self { next: NextRun::new(base), cursor: 0, editor: None }
    }

    pub fn watching() -> Self {
        Self { next: NextRun::watching(), cursor: 0, editor: None }
    }

    pub fn ablation(&self) -> Ablation {
        self.next.ablation
    }

    pub fn is_typing(&self) -> bool {
        self.editor.is_some()
    }

    pub fn scroll(&mut self, by: isize) {
        self.cursor = step_selection(self.cursor, ROWS, by);
    }

    fn knob(&self) -> Option<&'static str> {
        self.cursor.checked_sub(FIRST_KNOB_ROW).and_then(|i| KNOBS.get(i)).copied()
    }

    fn start(&self) -> AblationCommand {
        match self.next.configs() {
            Ok(configs) => AblationCommand::Start(configs),
            Err(err) => AblationCommand::Refused(format!("{err:#}")),
        }
    }

    fn sweep(&self) -> AblationCommand {
        match self.next.config() {
            Ok(config) => AblationCommand::Sweep(Box::new(config)),
            Err(err) => AblationCommand::Refused(format!("{err:#}")),
        }
    }

    /// Typing into the value editor: Enter applies (or shows why not), Esc cancels.
    fn edit_key(&mut self, key: KeyEvent) {
        let Some(editor) = self.editor.as_mut() else { return };
        match key.code {
            KeyCode::Esc => self.editor = None,
            KeyCode::Backspace => {
                editor.text.pop();
            }
            KeyCode::Char(c) => editor.text.push(c),
            KeyCode::Enter => {
                let text = editor.text.clone();
                let result = match self.knob() {
                    Some(key) => self.next.set_value(key, &text),
                    None => self.next.set_seeds(&text),
                };
                match result {
                    Ok(()) => self.editor = None,
                    Err(err) => {
                        if let Some(editor) = self.editor.as_mut() {
                            // One line: the TOML parser's messages span several.
                            let message = format!("{err:#}");
                            editor.error =
                                Some(message.split_whitespace().collect::<Vec<_>>().join(" "));
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// Handles a key: `None` when it is not the pane's, `Some(None)` when it only moved,
    /// toggled or edited, `Some(Some(command))` when runs should start.
    pub fn handle_key(&mut self, key: KeyEvent) -> Option<Option<AblationCommand>> {
        if self.editor.is_some() {
            self.edit_key(key);
            return Some(None);
        }
        match key.code {
            KeyCode::Down | KeyCode::Char('j') => self.scroll(1),
            KeyCode::Up | KeyCode::Char('k') => self.scroll(-1),
            KeyCode::Char(' ') | KeyCode::Enter if self.cursor < FIRST_KNOB_ROW => {
                let name = ABLATION_SWITCHES[self.cursor];
                let ablation = &mut self.next.ablation;
                let on = ablation.get(name).expect("listed switches exist");
                ablation.set(name, !on).expect("listed switches exist");
            }
            KeyCode::Enter | KeyCode::Char('e')
                if (FIRST_KNOB_ROW..=SEEDS_ROW).contains(&self.cursor) =>
            {
                if self.next.base().is_none() {
                    return Some(Some(AblationCommand::Refused(
                        "Watching a run: the setup cannot be edited here.".to_string(),
                    )));
                }
                let text = match self.knob() {
                    Some(key) => self.next.value_text(key),
                    None => self.next.seeds.to_string(),
                };
                self.editor = Some(Editor { text, error: None });
            }
            KeyCode::Enter if self.cursor == START_ROW => return Some(Some(self.start())),
            KeyCode::Char('r') => return Some(Some(self.start())),
            KeyCode::Enter if self.cursor == SWEEP_ROW => return Some(Some(self.sweep())),
            KeyCode::Char('s') => return Some(Some(self.sweep())),
            _ => return None,
        }
        Some(None)
    }

    /// `launch_note` says why runs cannot start (watch mode) or what is queued.
    pub fn draw(&self, frame: &mut Frame, area: Rect, launch_note: &str) {
        let [list_area, note_area] =
            Layout::vertical([Constraint::Min(4), Constraint::Length(3)]).areas(area);
        let mut items: Vec<ListItem> = ABLATION_SWITCHES
            .iter()
            .map(|name| {
                let on = self.next.ablation.get(name).unwrap_or(false);
                let style =
                    if on { Style::new().fg(Color::Green) } else { Style::new().fg(Color::Red) };
                ListItem::new(Line::styled(
                    format!("[{}] {name}", if on { 'x' } else { ' ' }),
                    style,
                ))
            })
            .collect();
        let editing = |row: usize| self.editor.as_ref().filter(|_| self.cursor == row);
        for (i, key) in KNOBS.iter().enumerate() {
            let row = FIRST_KNOB_ROW + i;
            let line = match editing(row) {
                Some(editor) => edit_line(key, editor),
                None => {
                    let style = if self.next.is_changed(key) {
                        Style::new().fg(Color::Yellow).bold()
                    } else {
                        Style::new()
                    };
                    Line::from(vec![
                        Span::raw(format!("    {key:<29}")),
                        Span::styled(self.next.value_text(key), style),
                    ])
                }
            };
            items.push(ListItem::new(line));
        }
        items.push(ListItem::new(match editing(SEEDS_ROW) {
            Some(editor) => edit_line("repeat with N seeds", editor),
            None => Line::from(format!("    {:<29}{}", "repeat with N seeds", self.next.seeds)),
        }));
        items.push(ListItem::new(Line::from("▶ Start run with this setup (r)").bold()));
        items.push(ListItem::new(Line::from(sweep_item()).bold()));
        let mut state = ListState::default().with_selected(Some(self.cursor));
        frame.render_stateful_widget(
            List::new(items)
                .block(Block::bordered().title(format!("Next run: {}", self.next.label())))
                .highlight_symbol("» ")
                .highlight_style(Style::new().bg(Color::DarkGray)),
            list_area,
            &mut state,
        );
        let note = match self.editor.as_ref().and_then(|editor| editor.error.as_ref()) {
            Some(error) => Line::styled(format!("Refused: {error}"), Style::new().fg(Color::Red)),
            None => Line::from(
                "j/k move · Space toggles · Enter edits a value (Enter applies, Esc cancels) · \
                 r starts · s queues the leave-one-out sweep",
            ),
        };
        frame.render_widget(
            Paragraph::new(vec![note, Line::from(launch_note.to_string())])
                .wrap(Wrap { trim: true }),
            note_area,
        );
    }
}

fn edit_line(key: &str, editor: &Editor) -> Line<'static> {
    let style = if editor.error.is_some() { Color::Red } else { Color::Cyan };
    Line::from(vec![
        Span::raw(format!("    {key:<29}")),
        Span::styled(format!("{}▏", editor.text), Style::new().fg(style).bold()),
    ])
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
