//! The dashboard: a ratatui TUI over the background trainer.
//!
//! It never touches tensors. It folds `TrainEvent`s (from a run it started, or from a
//! run's `events.jsonl` in watch mode) into state, and draws seven panes: Loss, F1, Gates,
//! Errors, Ablations, Runs, Confusion. `App` holds all state and key handling (testable
//! without a terminal), `ui` and the `panes` draw it, `event_loop` connects it to the
//! terminal.

mod app;
mod confusion;
mod event_loop;
mod figurative;
mod image_preview;
mod intake;
mod known_runs;
mod launcher;
mod next_run;
mod panes;
mod run_rows;
mod run_view;
mod terminal;
mod ui;

#[cfg(test)]
mod tests;

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

pub use app::{App, Overlay};
pub use figurative::looks_figurative;
pub use known_runs::{load_run, KnownRun, KnownRuns};
pub use launcher::{LaunchedRun, Launcher, TrainerLauncher};
pub use panes::Pane;
pub use ui::draw;

use crate::config::Config;
use crate::events::EventLogTail;
use crate::runs::RunDir;
use crate::signals::{StopSignal, StopSignals};
use terminal::TerminalGuard;

/// `memescope tui`: the dashboard, starting runs from `config` into `runs_dir`
/// (which overrides `config.paths.runs`). The dashboard's own log lines go to
/// `<runs_dir>/memescope.log`, each run's to its `run.log`. Each entry point returns the
/// signal (SIGINT, SIGTERM) that closed the dashboard, if one did: the run in flight was
/// asked to stop first.
pub async fn run_live(config: Config, runs_dir: PathBuf) -> Result<Option<StopSignal>> {
    open_live(config, runs_dir, false).await
}

/// `memescope train` on a terminal: the dashboard with a run of `config` already started.
pub async fn train_live(config: Config, runs_dir: PathBuf) -> Result<Option<StopSignal>> {
    open_live(config, runs_dir, true).await
}

async fn open_live(
    mut config: Config,
    runs_dir: PathBuf,
    start: bool,
) -> Result<Option<StopSignal>> {
    crate::train::lower_compute_pool_priority();
    config.paths.runs = runs_dir.clone();
    // As the trainer saves it in each run directory, so that labels (differences from
    // this base) do not list paths made absolute.
    let config = config.absolutized()?;
    std::fs::create_dir_all(&runs_dir)
        .with_context(|| format!("creating runs directory {}", runs_dir.display()))?;
    crate::logging::console_to_file(&runs_dir.join("memescope.log"))?;
    let probe = config.clone();
    let has_reasoning =
        tokio::task::spawn_blocking(move || crate::plan::data_has_reasoning(&probe))
            .await
            .context("checking the data for reasoning fields")?;
    let mut app = App::live(config, Box::new(TrainerLauncher));
    app.data_has_reasoning = has_reasoning;
    app.scan_runs();
    if start {
        app.start_base_run();
    }
    run_dashboard(app, None).await
}

/// `memescope watch`: follows `run_dir/events.jsonl` live, or replays a finished run.
pub async fn run_watch(run_dir: PathBuf) -> Result<Option<StopSignal>> {
    if !run_dir.is_dir() {
        bail!("{} is not a run directory", run_dir.display());
    }
    let log_dir = run_dir.parent().map(PathBuf::from).unwrap_or_default();
    crate::logging::console_to_file(&log_dir.join("memescope.log"))?;
    let follower = EventLogTail::new(&RunDir::at(&run_dir).events());
    let mut app = App::watch(run_dir);
    app.scan_runs();
    run_dashboard(app, Some(follower)).await
}

async fn run_dashboard(mut app: App, follower: Option<EventLogTail>) -> Result<Option<StopSignal>> {
    // Raw mode turns Ctrl-C into a key; a signal (from `kill`, a scheduler) still comes.
    let signals = StopSignals::listen().context("listening for SIGINT and SIGTERM")?;
    let mut guard = TerminalGuard::enter()?;
    // Before the event stream starts reading stdin, or the terminal's answer to the
    // graphics query would be read as key presses.
    app.errors.preview.set_picker(image_preview::terminal_picker());
    let result = event_loop::run(&mut guard.terminal, &mut app, follower, &signals).await;
    drop(guard);
    if let Err(err) = &result {
        tracing::error!("dashboard error: {err:#}");
    }
    result.map(|()| signals.received())
}
