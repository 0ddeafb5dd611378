//! The frame: tab bar, the current pane, the status bar and overlays.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Tabs, Wrap};
use ratatui::Frame;

use super::app::{App, Overlay};
use super::panes::{f1, gates, Pane};
use crate::config::Precision;
use crate::runs::RunStatus;

/// Below this size the panes cannot be laid out legibly.
pub const MIN_WIDTH: u16 = 80;
pub const MIN_HEIGHT: u16 = 24;
/// Width of the help overlay's key column.
const KEY_COLUMN: usize = 34;

/// Every key, for the help overlay: the pane keys, then `OTHER_KEYS`.
pub fn keys() -> Vec<(String, &'static str)> {
    let panes = (format!("{}, Tab, Shift-Tab", Pane::key_range()), "switch pane");
    std::iter::once(panes).chain(OTHER_KEYS.iter().map(|&(key, what)| (key.into(), what))).collect()
}

/// The keys other than the pane keys. Descriptions stay within 42 characters, so that the
/// overlay fits an 80-column terminal (`MIN_WIDTH`) beside the key column uncut.
const OTHER_KEYS: &[(&str, &str)] = &[
    ("?", "this help (any key closes it)"),
    ("q, Ctrl-C", "quit (asks y/n while a run is training)"),
    ("x", "stop the run (cancels queued runs)"),
    ("Loss: c / l", "loss components / learning-rate schedule"),
    ("Errors: j/k, ↑/↓, PgUp/PgDn, g/G", "move in the list (mouse wheel too)"),
    ("Errors: Enter / Esc", "open / close the details and the image"),
    ("Errors: /", "search (type; Enter keeps, Esc cancels)"),
    ("Errors: t / p", "cycle the true / predicted class filter"),
    ("Errors: f", "figurative/sarcastic filter (heuristic)"),
    ("Errors: o / c", "flip sort by confidence / clear filters"),
    ("Ablations: j/k, Space", "move, toggle a switch"),
    ("Ablations: Enter on a value", "edit it (Enter applies, Esc cancels)"),
    ("Ablations: r / s", "start the setup / leave-one-out sweep"),
    ("Runs: Space, Enter / Esc", "mark; compare two marked rows / back"),
    ("Runs: b, o / O, g", "Δ baseline, sort column / order, seeds"),
    ("Runs: h / H, a", "hide / show hidden, archive (asks y)"),
    ("Confusion: arrows, Enter", "pick a cell, list its samples in Errors"),
];

pub fn draw(frame: &mut Frame, app: &mut App) {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        draw_too_small(frame, area);
        return;
    }
    let [tabs_area, pane_area, status_area] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(10), Constraint::Length(2)])
            .areas(area);
    let titles = Pane::ALL.iter().map(|pane| format!("{} {}", pane.key(), pane.title()));
    frame.render_widget(
        Tabs::new(titles)
            .select(app.pane.index())
            .highlight_style(Style::new().fg(Color::Black).bg(Color::Cyan).bold())
            .divider("│"),
        tabs_area,
    );

    match app.pane {
        Pane::Loss => app.loss.draw(frame, pane_area, &app.view),
        Pane::F1 => f1::draw(frame, pane_area, &app.view),
        Pane::Gates => gates::draw(frame, pane_area, &app.view),
        Pane::Errors => {
            app.errors.draw(frame, pane_area, app.view.misclassified(), app.view.labels())
        }
        Pane::Ablations => app.ablations.draw(frame, pane_area, &app.launch_note()),
        Pane::Runs => app.runs_pane.draw(frame, pane_area, &app.runs),
        Pane::Confusion => app.confusion.draw(frame, pane_area, &app.view),
    }
    draw_status(frame, status_area, app);

    match app.overlay {
        Overlay::None => {}
        Overlay::Help => draw_help(frame, area),
        Overlay::ConfirmQuit => draw_confirm_quit(frame, area),
    }
}

fn draw_too_small(frame: &mut Frame, area: Rect) {
    let message = format!(
        "Terminal too small: {}×{}.\nmemescope needs at least {MIN_WIDTH}×{MIN_HEIGHT}.",
        area.width, area.height
    );
    let box_area = area.centered(Constraint::Length(area.width.min(44)), Constraint::Length(2));
    frame.render_widget(Paragraph::new(message).centered().wrap(Wrap { trim: true }), box_area);
}

fn format_seconds(seconds: f64) -> String {
    let s = seconds.max(0.0) as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else {
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

fn status_line(app: &App) -> Line<'static> {
    let view = &app.view;
    let (state, color) = match view.status {
        None if app.watched_dir().is_some() => ("waiting for events", Color::Gray),
        None => ("idle", Color::Gray),
        Some(status) => (
            status.label(),
            match status {
                RunStatus::Failed => Color::Red,
                RunStatus::Finished => Color::Green,
                RunStatus::Stopped | RunStatus::Interrupted => Color::Magenta,
                RunStatus::Preparing | RunStatus::Running => Color::Yellow,
            },
        ),
    };
    let mut spans = vec![Span::styled(format!("● {state}"), Style::new().fg(color).bold())];
    let mut parts = Vec::new();
    // Most telling first: a narrow terminal cuts the end of the line.
    if let Some(info) = &view.info {
        let done = view.epochs.len();
        let current = if view.status == Some(RunStatus::Running) { done + 1 } else { done };
        parts.push(format!("epoch {}/{}", current.min(info.epochs), info.epochs));
        parts.push(format!("step {}/{}", view.global_step, info.epochs * info.steps_per_epoch));
        if view.status == Some(RunStatus::Running) {
            if let Some(eta) = view.eta_seconds() {
                parts.push(format!("ETA {}", format_seconds(eta)));
            }
        }
        if info.text_only_reason.is_some() {
            // The full reason arrived as a stage message; the bar keeps the fact visible.
            parts.push("text-only".to_string());
        } else if info.masked_images > 0 {
            parts.push(format!("{} images masked", info.masked_images));
        }
        if view.samples_per_second > 0.0 {
            parts.push(format!("{:.0} samples/s", view.samples_per_second));
        }
        parts.push(match info.precision {
            Precision::F32 => info.device.clone(),
            precision => format!("{} {}", info.device, precision.name()),
        });
        if let Some(memory) = view.device_memory {
            let gib = |bytes: u64| bytes as f64 / f64::from(1u32 << 30);
            parts.push(format!(
                "GPU {:.1}/{:.1} GiB",
                gib(memory.used_bytes),
                gib(memory.total_bytes)
            ));
        }
        parts.push(format!("{} {}", info.dataset, info.run_id));
    }
    if !parts.is_empty() {
        spans.push(Span::raw(format!(" · {}", parts.join(" · "))));
    }
    Line::from(spans)
}

/// The second status line: a failure or the last command's notice, then what the
/// trainer is doing besides stepping (stage, progress, cache messages).
fn message_line(app: &App) -> Line<'static> {
    let view = &app.view;
    let mut spans = Vec::new();
    if let Some(failure) = &view.failure {
        spans.push(Span::styled(
            format!("Training failed: {failure}"),
            Style::new().fg(Color::Red).bold(),
        ));
    } else if let Some(notice) = &app.notice {
        spans.push(Span::styled(notice.clone(), Style::new().fg(Color::Yellow)));
    }
    let activity = match &view.progress {
        Some(p) => Some(format!("{} {}/{} ({:.0}/s)", p.stage, p.done, p.total, p.per_second)),
        None => view.stage.clone(),
    };
    if let Some(activity) = activity {
        if !spans.is_empty() {
            spans.push(Span::raw(" · "));
        }
        spans.push(Span::raw(activity));
    }
    Line::from(spans)
}

fn draw_status(frame: &mut Frame, area: Rect, app: &App) {
    let [first, second] =
        Layout::vertical([Constraint::Length(1), Constraint::Length(1)]).areas(area);
    frame.render_widget(
        Paragraph::new(status_line(app)).style(Style::new().bg(Color::Black)),
        first,
    );
    let hints = "?: help · q: quit";
    let [message_area, hints_area] =
        Layout::horizontal([Constraint::Min(10), Constraint::Length(hints.chars().count() as u16)])
            .areas(second);
    frame.render_widget(Paragraph::new(message_line(app)), message_area);
    frame.render_widget(Paragraph::new(hints).fg(Color::DarkGray).right_aligned(), hints_area);
}

fn draw_help(frame: &mut Frame, area: Rect) {
    let keys = keys();
    let height = (keys.len() as u16 + 2).min(area.height);
    let popup = area.centered(Constraint::Length(area.width.min(90)), Constraint::Length(height));
    let lines: Vec<Line> = keys
        .into_iter()
        .map(|(key, what)| {
            Line::from(vec![
                Span::styled(format!("{key:>KEY_COLUMN$}  "), Style::new().fg(Color::Cyan)),
                Span::raw(what),
            ])
        })
        .collect();
    frame.render_widget(Clear, popup);
    frame.render_widget(Paragraph::new(lines).block(Block::bordered().title("Keys")), popup);
}

fn draw_confirm_quit(frame: &mut Frame, area: Rect) {
    let popup = area.centered(Constraint::Length(52), Constraint::Length(4));
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new("A training run is in progress.\nStop it and quit? (y/n)")
            .centered()
            .block(Block::bordered().title("Quit").fg(Color::Yellow)),
        popup,
    );
}
