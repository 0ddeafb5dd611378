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
    /// Opens `path` for appending. A run killed while writing a line leaves that line
    /// unfinished: it is cut off (and said in the log) before anything is appended, so that
    /// a resumed run's first event starts a line of its own instead of joining it.
    pub fn append(path: &Path) -> Result<Self> {
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening event log {}", path.display()))?;
        let cut = drop_unfinished_line(&mut file)
            .with_context(|| format!("repairing event log {}", path.display()))?;
        if cut > 0 {
            tracing::warn!(
                "{}: dropped an unfinished last line ({cut} bytes) left by an interrupted run",
                path.display()
            );
        }
        Ok(Self { path: path.to_path_buf(), file })
    }
}

/// Truncates `file` after its last newline; returns how many bytes that removed.
fn drop_unfinished_line(file: &mut File) -> std::io::Result<u64> {
    use std::io::{Read, Seek, SeekFrom};
    let len = file.metadata()?.len();
    let mut end = len;
    let mut chunk = vec![0u8; 64 * 1024];
    while end > 0 {
        let start = end.saturating_sub(chunk.len() as u64);
        let window = &mut chunk[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(window)?;
        if let Some(newline) = window.iter().rposition(|&b| b == b'\n') {
            end = start + newline as u64 + 1;
            break;
        }
        end = start;
    }
    if end < len {
        file.set_len(end)?;
    }
    Ok(len - end)
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

    #[test]
    fn appending_after_an_interrupted_write_drops_the_unfinished_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let whole = "{\"event\":\"failed\",\"message\":\"kept\"}\n";
        // Longer than one 64 KiB read window, so that the search for the last newline
        // crosses windows.
        let unfinished = format!("{{\"event\":\"stage\",\"name\":\"{}", "x".repeat(70_000));
        std::fs::write(&path, format!("{whole}{unfinished}")).unwrap();
        let mut sink = JsonlSink::append(&path).unwrap();
        sink.emit(&failed("resumed")).unwrap();
        assert_eq!(read_events(&path).unwrap(), [failed("kept"), failed("resumed")]);

        // A log that ends with its newline is left whole; one with no newline at all empties.
        let mut sink = JsonlSink::append(&path).unwrap();
        sink.emit(&failed("again")).unwrap();
        assert_eq!(read_events(&path).unwrap().len(), 3);
        std::fs::write(&path, "{\"event\":\"fai").unwrap();
        JsonlSink::append(&path).unwrap().emit(&failed("first")).unwrap();
        assert_eq!(read_events(&path).unwrap(), [failed("first")]);
    }
}
