//! Entering and leaving the terminal's full-screen mode.

use std::io::stdout;
use std::sync::Mutex;
use std::thread::ThreadId;

use anyhow::{Context, Result};
use crossterm::event::{DisableMouseCapture, EnableMouseCapture};
use crossterm::execute;
use ratatui::DefaultTerminal;

/// Raw mode, alternate screen and mouse capture for as long as it lives. Dropping it
/// (normal exit or `?` on an error) restores the terminal; so does a panic on the thread
/// that draws the dashboard, before the panic message is printed. A panic on any other
/// thread (the trainer, a relay) leaves the dashboard drawing: the message goes to the log,
/// and the trainer reports its own panic as a failed run.
pub struct TerminalGuard {
    pub terminal: DefaultTerminal,
}

/// The thread drawing the dashboard while a [`TerminalGuard`] lives.
static DASHBOARD_THREAD: Mutex<Option<ThreadId>> = Mutex::new(None);

impl TerminalGuard {
    pub fn enter() -> Result<Self> {
        // ratatui installs a hook that leaves raw mode and the alternate screen, then calls
        // the one before it (which prints the message); ours decides whether it runs.
        let terminal = ratatui::try_init().context("entering the terminal's full-screen mode")?;
        let restore_and_print = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let dashboard = *DASHBOARD_THREAD.lock().unwrap_or_else(|e| e.into_inner());
            if restores_terminal(std::thread::current().id(), dashboard) {
                let _ = execute!(stdout(), DisableMouseCapture);
                restore_and_print(info);
            } else {
                let thread = std::thread::current();
                tracing::error!("thread {} {info}", thread.name().unwrap_or("unnamed"));
            }
        }));
        *DASHBOARD_THREAD.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(std::thread::current().id());
        let guard = Self { terminal };
        execute!(stdout(), EnableMouseCapture).context("enabling mouse capture")?;
        Ok(guard)
    }
}

/// Whether a panic on thread `panicking` must give the terminal back: when no dashboard is
/// drawing, or when it is the dashboard's own thread that panics.
fn restores_terminal(panicking: ThreadId, dashboard: Option<ThreadId>) -> bool {
    dashboard.is_none_or(|dashboard| dashboard == panicking)
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        *DASHBOARD_THREAD.lock().unwrap_or_else(|e| e.into_inner()) = None;
        let _ = execute!(stdout(), DisableMouseCapture);
        ratatui::restore();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_dashboards_own_panic_gives_the_terminal_back() {
        let dashboard = std::thread::current().id();
        let trainer = std::thread::spawn(|| std::thread::current().id()).join().unwrap();
        assert!(restores_terminal(dashboard, Some(dashboard)));
        assert!(!restores_terminal(trainer, Some(dashboard)), "the dashboard keeps drawing");
        assert!(restores_terminal(trainer, None), "no dashboard: print as usual");
    }
}
