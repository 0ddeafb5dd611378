//! The one loop: terminal input and a redraw tick meet in a single `tokio::select!`.
//! Nothing here waits on training: at each tick the trainer's events (or the watched
//! file's, read on another thread) are taken without waiting, a bounded number of them
//! (`intake`), and the screen is redrawn once if anything changed. A key is handled and
//! drawn right away, whatever backlog of events there is. The only disk work on this thread
//! is the runs folder's rescan every [`super::app::RUNS_RESCAN`]: a listing, and the bytes
//! that unfinished runs appended since the last one.

use std::time::Duration;

use anyhow::{Context, Result};
use crossterm::event::{Event, EventStream};
use futures::StreamExt;
use ratatui::DefaultTerminal;
use tokio::time::MissedTickBehavior;

use super::app::App;
use super::intake::{WatchedEventLog, MAX_EVENTS_PER_TICK};
use super::ui;
use crate::events::EventLogTail;
use crate::signals::StopSignals;

const TICK: Duration = Duration::from_millis(100);
/// How long quitting waits for a stopped run to write its last event.
const STOP_GRACE: Duration = Duration::from_secs(5);

enum Incoming {
    Input(Option<std::io::Result<Event>>),
    Tick,
    /// SIGINT or SIGTERM: stop the run in flight and quit.
    Signal,
}

/// Runs until the user quits. `follower` is the watched run's events file, if any.
pub async fn run(
    terminal: &mut DefaultTerminal,
    app: &mut App,
    follower: Option<EventLogTail>,
    signals: &StopSignals,
) -> Result<()> {
    let mut input = EventStream::new();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut followed = follower.map(WatchedEventLog::spawn);
    let mut dirty = true;
    while !app.should_quit() {
        if dirty {
            terminal.draw(|frame| ui::draw(frame, app)).context("drawing the dashboard")?;
        }
        let incoming = tokio::select! {
            event = input.next() => Incoming::Input(event),
            _ = tick.tick() => Incoming::Tick,
            _ = signals.first(), if signals.received().is_none() => Incoming::Signal,
        };
        dirty = match incoming {
            Incoming::Input(None) => break,
            Incoming::Input(Some(event)) => {
                match event.context("reading terminal input")? {
                    Event::Key(key) => app.handle_key(key),
                    Event::Mouse(mouse) => app.handle_mouse(mouse),
                    _ => {}
                }
                true
            }
            Incoming::Tick => take_events(app, &mut followed),
            Incoming::Signal => {
                app.stop_and_quit();
                true
            }
        };
    }
    if app.stop_was_requested() {
        terminal.draw(|frame| ui::draw(frame, app)).context("drawing the dashboard")?;
        wait_for_stop(app).await;
    }
    Ok(())
}

/// Applies the events that arrived since the last tick, a bounded number from each source;
/// whether anything changed.
fn take_events(app: &mut App, followed: &mut Option<WatchedEventLog>) -> bool {
    let mut changed = app.drain_active(MAX_EVENTS_PER_TICK) > 0;
    changed |= app.scan_runs_if_due();
    if let Some(run) = followed.as_mut() {
        match run.take(MAX_EVENTS_PER_TICK) {
            Ok(events) => {
                changed |= !events.is_empty();
                events.into_iter().for_each(|event| app.apply_event(event));
            }
            Err(err) => {
                tracing::error!("{err:#}");
                app.notice = Some(format!("Stopped following: {err:#}"));
                *followed = None;
                changed = true;
            }
        }
    }
    changed
}

/// Lets a stopped run report `Stopped` and close its log, for a bounded time.
async fn wait_for_stop(app: &mut App) {
    let drain = async {
        while let Some(events) = app.active_events() {
            match events.recv().await {
                Some(event) => app.apply_event(event),
                None => app.on_active_closed(),
            }
        }
    };
    if tokio::time::timeout(STOP_GRACE, drain).await.is_err() {
        tracing::warn!("the run did not stop within {STOP_GRACE:?}; quitting anyway");
    }
}
