//! The one loop: terminal input, the trainer's events and a redraw tick meet in a single
//! `tokio::select!`. Nothing here waits on training; events only change state, and the
//! screen is redrawn at most once per tick (steps can arrive hundreds per second).

use std::future::pending;
use std::time::Duration;

use anyhow::{Context, Result};
use crossterm::event::{Event, EventStream};
use futures::StreamExt;
use ratatui::DefaultTerminal;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::MissedTickBehavior;

use super::app::App;
use super::ui;
use crate::events::{EventFollower, TrainEvent};

const TICK: Duration = Duration::from_millis(100);
/// How long quitting waits for a stopped run to write its last event.
const STOP_GRACE: Duration = Duration::from_secs(5);

// Lives for one loop turn on the stack; boxing the event would only add an allocation.
#[allow(clippy::large_enum_variant)]
enum Incoming {
    Input(Option<std::io::Result<Event>>),
    /// `None`: the run's channel closed.
    Train(Option<TrainEvent>),
    Tick,
}

async fn next_train_event(
    events: Option<&mut UnboundedReceiver<TrainEvent>>,
) -> Option<TrainEvent> {
    match events {
        Some(events) => events.recv().await,
        None => pending().await,
    }
}

/// Runs until the user quits. `follower` is the watched run's events file, if any.
pub async fn run(
    terminal: &mut DefaultTerminal,
    app: &mut App,
    mut follower: Option<EventFollower>,
) -> Result<()> {
    let mut input = EventStream::new();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut dirty = true;
    // Trainer events since the last draw; shown at the next tick.
    let mut changed = false;
    while !app.should_quit() {
        if dirty {
            terminal.draw(|frame| ui::draw(frame, app)).context("drawing the dashboard")?;
            dirty = false;
        }
        let incoming = tokio::select! {
            event = input.next() => Incoming::Input(event),
            event = next_train_event(app.active_events()) => Incoming::Train(event),
            _ = tick.tick() => Incoming::Tick,
        };
        match incoming {
            Incoming::Input(None) => break,
            Incoming::Input(Some(event)) => {
                match event.context("reading terminal input")? {
                    Event::Key(key) => app.handle_key(key),
                    Event::Mouse(mouse) => app.handle_mouse(mouse),
                    _ => {}
                }
                dirty = true;
            }
            Incoming::Train(Some(event)) => {
                app.apply_event(event);
                changed = true;
            }
            Incoming::Train(None) => {
                app.on_active_closed();
                changed = true;
            }
            Incoming::Tick => {
                if let Some(follow) = follower.as_mut() {
                    match follow.poll() {
                        Ok(events) => {
                            changed |= !events.is_empty();
                            events.into_iter().for_each(|event| app.apply_event(event));
                        }
                        Err(err) => {
                            tracing::error!("{err:#}");
                            app.notice = Some(format!("Stopped following: {err:#}"));
                            follower = None;
                            changed = true;
                        }
                    }
                }
                dirty = std::mem::take(&mut changed);
            }
        }
    }
    if app.stop_was_requested() {
        terminal.draw(|frame| ui::draw(frame, app)).context("drawing the dashboard")?;
        wait_for_stop(app).await;
    }
    Ok(())
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
