//! Entering and leaving the terminal's full-screen mode, and logging away from it.

use std::fs::OpenOptions;
use std::io::stdout;
use std::path::Path;
use std::sync::Mutex;

use anyhow::{Context, Result};
use crossterm::event::{DisableMouseCapture, EnableMouseCapture};
use crossterm::execute;
use ratatui::DefaultTerminal;

/// Raw mode, alternate screen and mouse capture for as long as it lives. Dropping it
/// (normal exit or `?` on an error) restores the terminal; a panic hook does the same
/// when the program panics, before the panic message is printed.
pub struct TerminalGuard {
    pub terminal: DefaultTerminal,
}

impl TerminalGuard {
    pub fn enter() -> Result<Self> {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let _ = execute!(stdout(), DisableMouseCapture);
            previous(info);
        }));
        // Installs its own hook that leaves raw mode and the alternate screen, then
        // calls ours.
        let terminal = ratatui::try_init().context("entering the terminal's full-screen mode")?;
        let guard = Self { terminal };
        execute!(stdout(), EnableMouseCapture).context("enabling mouse capture")?;
        Ok(guard)
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        let _ = execute!(stdout(), DisableMouseCapture);
        ratatui::restore();
    }
}

/// Sends `tracing` output to `path` (appending): the screen belongs to the dashboard.
/// Keeps an already installed subscriber (e.g. one set up by the CLI).
pub fn init_logging(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening log file {}", path.display()))?;
    let filter = tracing_subscriber::EnvFilter::try_from_env("MEMESCOPE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(Mutex::new(file))
        .try_init();
    Ok(())
}
