//! Where events go: a run's `events.jsonl`, a channel to the dashboard, or both.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::TrainEvent;

pub trait EventSink: Send {
    fn emit(&mut self, event: &TrainEvent) -> Result<()>;
}

/// Appends one JSON object per line and flushes after each, so that `watch` (or a crash)
/// always sees whole lines.
pub struct JsonlSink {
    path: PathBuf,
    file: File,
}

impl JsonlSink {
    pub fn append(path: &Path) -> Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening event log {}", path.display()))?;
        Ok(Self { path: path.to_path_buf(), file })
    }
}

impl EventSink for JsonlSink {
    fn emit(&mut self, event: &TrainEvent) -> Result<()> {
        let mut line = serde_json::to_string(event).expect("events always serialise");
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .and_then(|()| self.file.flush())
            .with_context(|| format!("writing event log {}", self.path.display()))
    }
}

/// Forwards events to a channel; a closed receiver (the dashboard quit) is not an error.
pub struct ChannelSink(pub tokio::sync::mpsc::UnboundedSender<TrainEvent>);

impl EventSink for ChannelSink {
    fn emit(&mut self, event: &TrainEvent) -> Result<()> {
        let _ = self.0.send(event.clone());
        Ok(())
    }
}

/// Sends every event to each of its sinks, in order.
pub struct Fanout<'a>(pub Vec<Box<dyn EventSink + 'a>>);

impl EventSink for Fanout<'_> {
    fn emit(&mut self, event: &TrainEvent) -> Result<()> {
        self.0.iter_mut().try_for_each(|sink| sink.emit(event))
    }
}

/// Collects events in memory (tests, benchmarks).
#[derive(Default)]
pub struct VecSink(pub Vec<TrainEvent>);

impl EventSink for VecSink {
    fn emit(&mut self, event: &TrainEvent) -> Result<()> {
        self.0.push(event.clone());
        Ok(())
    }
}
