//! How the dashboard starts training runs, behind a trait so that tests can replay
//! recorded events instead of training.

use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

use crate::config::Config;
use crate::events::TrainEvent;
use crate::train::StopFlag;

/// A run the dashboard started: the events it reports and the way to ask it to stop.
pub struct LaunchedRun {
    /// Closes after the run's last event.
    pub events: UnboundedReceiver<TrainEvent>,
    pub stop: StopFlag,
}

pub trait Launcher {
    fn launch(&mut self, config: Config) -> LaunchedRun;
}

/// Starts real runs through `crate::train::spawn_run`. Must be used inside a tokio runtime.
pub struct TrainerLauncher;

impl Launcher for TrainerLauncher {
    fn launch(&mut self, config: Config) -> LaunchedRun {
        let handle = crate::train::spawn_run(config);
        let stop = handle.stop.clone();
        let (sender, events) = unbounded_channel();
        let mut trainer_events = handle.events;
        let outcome = handle.outcome;
        // The trainer reports its own failures as `Failed`; this relay only adds one when
        // the run ended without a final event (an error before the first event, a panic),
        // so that the dashboard never shows a dead run as running.
        tokio::spawn(async move {
            let mut ended = false;
            while let Some(event) = trainer_events.recv().await {
                ended |= matches!(
                    event,
                    TrainEvent::Finished(_)
                        | TrainEvent::Stopped { .. }
                        | TrainEvent::Failed { .. }
                );
                if sender.send(event).is_err() {
                    return;
                }
            }
            let message = match outcome.await {
                Ok(Ok(_)) => None,
                Ok(Err(err)) => Some(format!("{err:#}")),
                Err(join) => Some(format!("the trainer crashed: {join}")),
            };
            if let (false, Some(message)) = (ended, message) {
                tracing::error!("run ended without a final event: {message}");
                let _ = sender.send(TrainEvent::Failed { message });
            }
        });
        LaunchedRun { events, stop }
    }
}
