//! Following an events file that another process (or thread) is still appending to.
//!
//! `read_events` reads a file once; `EventLogTail` remembers how far it got so that each
//! poll returns only the events appended since, which is what `memescope watch` needs to
//! follow a live run and to replay a finished one.
//!
//! Both count only lines that end with a newline (the writer, `JsonlSink`, appends each
//! event with its newline). Whatever follows the last newline is a line still being
//! written, possibly by another machine over a network filesystem that shows the file's
//! new length before all of its bytes: it is left for a later read, whatever it holds,
//! never an error.

use std::fs::File;
use std::io::{ErrorKind, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::{LoggedEvent, TrainEvent};

/// The events of an events file's whole lines; the file must exist. A malformed whole
/// line is an error naming file and line.
pub fn read_events(path: &Path) -> Result<Vec<TrainEvent>> {
    Ok(read_logged_events(path)?.into_iter().map(|logged| logged.event).collect())
}

/// [`read_events`] with each event's time, where the log recorded one.
pub fn read_logged_events(path: &Path) -> Result<Vec<LoggedEvent>> {
    File::open(path).with_context(|| format!("opening event log {}", path.display()))?;
    EventLogTail::new(path).poll_logged()
}

#[derive(Debug)]
pub struct EventLogTail {
    path: PathBuf,
    /// Bytes consumed so far, including `partial`.
    offset: u64,
    /// The start of a line whose newline has not been written yet.
    partial: Vec<u8>,
    /// Whole lines parsed so far, to name the line of a malformed event.
    lines_read: usize,
}

impl EventLogTail {
    pub fn new(path: &Path) -> Self {
        Self { path: path.to_path_buf(), offset: 0, partial: Vec::new(), lines_read: 0 }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The events of every whole line appended since the last poll. A missing file is not
    /// an error (the run may not have written its first event yet); a file that shrank
    /// is, because the events already shown would no longer match it.
    pub fn poll(&mut self) -> Result<Vec<TrainEvent>> {
        Ok(self.poll_logged()?.into_iter().map(|logged| logged.event).collect())
    }

    /// [`EventLogTail::poll`] with each event's time, where the log recorded one.
    pub fn poll_logged(&mut self) -> Result<Vec<LoggedEvent>> {
        let mut file = match File::open(&self.path) {
            Ok(file) => file,
            Err(err) if err.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => {
                return Err(err).with_context(|| format!("opening {}", self.path.display()))
            }
        };
        let len =
            file.metadata().with_context(|| format!("reading {}", self.path.display()))?.len();
        if len < self.offset {
            bail!(
                "{} shrank from {} to {len} bytes while being followed",
                self.path.display(),
                self.offset
            );
        }
        let appended = file
            .seek(SeekFrom::Start(self.offset))
            .and_then(|_| file.read_to_end(&mut self.partial))
            .with_context(|| format!("reading {}", self.path.display()))?;
        self.offset += appended as u64;

        let Some(last_newline) = self.partial.iter().rposition(|&b| b == b'\n') else {
            return Ok(Vec::new());
        };
        let rest = self.partial.split_off(last_newline + 1);
        let whole = std::mem::replace(&mut self.partial, rest);
        let mut events = Vec::new();
        // `whole` ends with a newline, so the last piece of the split is always empty.
        for line in whole[..whole.len() - 1].split(|&b| b == b'\n') {
            self.lines_read += 1;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let event = serde_json::from_slice(line).with_context(|| {
                format!("{} line {}: not an event", self.path.display(), self.lines_read)
            })?;
            events.push(event);
        }
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use std::fs::OpenOptions;
    use std::io::Write;

    use super::*;

    fn line(event: &TrainEvent) -> String {
        format!("{}\n", serde_json::to_string(event).unwrap())
    }

    fn stage(name: &str) -> TrainEvent {
        TrainEvent::Stage { name: name.to_string(), detail: String::new() }
    }

    #[test]
    fn returns_only_new_whole_lines_and_keeps_a_partial_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let mut follower = EventLogTail::new(&path);
        assert!(follower.poll().unwrap().is_empty(), "a missing file is just not written yet");

        let mut file = File::create(&path).unwrap();
        let second = line(&stage("b"));
        let (head, tail) = second.split_at(7);
        write!(file, "{}{head}", line(&stage("a"))).unwrap();
        assert_eq!(follower.poll().unwrap(), vec![stage("a")]);
        assert!(follower.poll().unwrap().is_empty(), "the half-written line waits");

        write!(file, "{tail}\n{}", line(&stage("c"))).unwrap();
        assert_eq!(follower.poll().unwrap(), vec![stage("b"), stage("c")]);
    }

    /// A replay (`read_events`, the Runs pane) of a log whose writer is mid-append: the
    /// cut line is skipped until complete, wherever it was cut, even inside a character
    /// or in bytes not yet written (zeros, as a network filesystem may show them).
    #[test]
    fn read_events_skips_a_last_line_cut_in_half() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        assert!(read_events(&path).is_err(), "a missing file is an error for a replay");
        let done = TrainEvent::Stage { name: "ok".into(), detail: "déjà vu".into() };
        let whole = line(&done);
        let cuts = [1, whole.find('é').unwrap() + 1, whole.len() - 2, whole.len() - 1];
        for cut in cuts {
            let mut bytes = line(&stage("a")).into_bytes();
            bytes.extend_from_slice(&whole.as_bytes()[..cut]);
            std::fs::write(&path, &bytes).unwrap();
            assert_eq!(read_events(&path).unwrap(), vec![stage("a")], "cut at byte {cut}");
            bytes.extend_from_slice(&whole.as_bytes()[cut..]);
            std::fs::write(&path, &bytes).unwrap();
            assert_eq!(read_events(&path).unwrap(), vec![stage("a"), done.clone()]);
        }
        let mut zeros = line(&stage("a")).into_bytes();
        zeros.extend_from_slice(&[0; 64]);
        std::fs::write(&path, &zeros).unwrap();
        assert_eq!(read_events(&path).unwrap(), vec![stage("a")]);
    }

    /// A complete JSON object without its newline is still a line being written.
    #[test]
    fn live_tail_waits_for_the_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let whole = line(&stage("b"));
        std::fs::write(&path, format!("{}{}", line(&stage("a")), whole.trim_end())).unwrap();
        let mut tail = EventLogTail::new(&path);
        assert_eq!(tail.poll().unwrap(), vec![stage("a")]);
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        writeln!(file).unwrap();
        assert_eq!(tail.poll().unwrap(), vec![stage("b")]);
    }

    #[test]
    fn malformed_line_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        std::fs::write(&path, format!("{}{{\"event\":\"nope\"}}\n", line(&stage("a")))).unwrap();
        let err = EventLogTail::new(&path).poll().unwrap_err();
        assert!(format!("{err:#}").contains("events.jsonl line 2"), "{err:#}");
    }

    #[test]
    fn a_file_that_shrinks_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        std::fs::write(&path, line(&stage("a"))).unwrap();
        let mut follower = EventLogTail::new(&path);
        follower.poll().unwrap();
        std::fs::write(&path, "").unwrap();
        assert!(follower.poll().is_err());
    }
}
