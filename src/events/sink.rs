//! Where events go: a run's `events.jsonl`, a channel to the dashboard, or both.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

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

/// One line of `events.jsonl`: the event, and the wall-clock time it was written (RFC 3339,
/// local time with its offset). Logs written before events carried a time have none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoggedEvent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    #[serde(flatten)]
    pub event: TrainEvent,
}

/// What [`JsonlSink`] writes: a [`LoggedEvent`] without cloning the event.
#[derive(Serialize)]
struct StampedLine<'a> {
    time: String,
    #[serde(flatten)]
    event: &'a TrainEvent,
}

impl EventSink for JsonlSink {
    fn emit(&mut self, event: &TrainEvent) -> Result<()> {
        let time = chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, false);
        let mut line =
            serde_json::to_string(&StampedLine { time, event }).expect("events always serialise");
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{read_events, read_logged_events};

    fn failed(message: &str) -> TrainEvent {
        TrainEvent::Failed { message: message.into() }
    }

    #[test]
    fn written_events_carry_a_time_and_old_logs_without_one_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        // A line as logs were written before events carried a time.
        std::fs::write(&path, "{\"event\":\"failed\",\"message\":\"old\"}\n").unwrap();
        let mut sink = JsonlSink::append(&path).unwrap();
        sink.emit(&failed("new")).unwrap();
        sink.emit(&TrainEvent::Stage { name: "data".into(), detail: "x".into() }).unwrap();

        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.lines().nth(1).unwrap().starts_with("{\"time\":\""), "{text}");
        assert_eq!(
            read_events(&path).unwrap(),
            [
                failed("old"),
                failed("new"),
                TrainEvent::Stage { name: "data".into(), detail: "x".into() }
            ]
        );
        let logged = read_logged_events(&path).unwrap();
        assert_eq!(logged[0], LoggedEvent { time: None, event: failed("old") });
        let time = logged[1].time.as_deref().expect("a new line has its time");
        let parsed = chrono::DateTime::parse_from_rfc3339(time).expect("RFC 3339");
        let age = chrono::Local::now().signed_duration_since(parsed);
        assert!(age.num_seconds().abs() < 60, "{time}");
        assert_eq!(logged[1].event, failed("new"));
    }
}
