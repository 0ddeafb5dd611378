//! The training engine: runs on a background thread and reports only through events.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Result;

use crate::config::Config;
use crate::events::{RunSummary, TrainEvent};

/// A cooperative stop request, checked by the trainer at every step boundary.
#[derive(Debug, Clone, Default)]
pub struct StopFlag(Arc<AtomicBool>);

impl StopFlag {
    pub fn request(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_requested(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// A run in flight: its event stream, a way to stop it, and its outcome.
pub struct RunHandle {
    pub events: tokio::sync::mpsc::UnboundedReceiver<TrainEvent>,
    pub stop: StopFlag,
    pub outcome: tokio::task::JoinHandle<Result<RunSummary>>,
}

/// Starts a training run on tokio's blocking pool. Must be called inside a tokio runtime.
/// Every event also lands in the run directory's `events.jsonl`.
pub fn spawn_run(config: Config) -> RunHandle {
    let _ = config;
    todo!("integrator")
}
