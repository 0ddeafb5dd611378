//! How trainer events reach the dashboard: at most `MAX_EVENTS_PER_TICK` per redraw tick,
//! never by waiting. A backlog (a fast trainer, a long run replayed by `watch`) is then
//! worked off over several frames while keys and drawing stay responsive, instead of one
//! loop turn applying all of it.

use std::collections::VecDeque;
use std::thread;
use std::time::Duration;

use anyhow::{anyhow, Result};
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

use crate::events::{EventLogTail, TrainEvent};

/// Events applied per tick at most: far above any trainer's step rate at 10 ticks a
/// second, and small enough that applying them takes a few milliseconds.
pub const MAX_EVENTS_PER_TICK: usize = 1_000;

/// How often the watched file is checked for new lines.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(100);

/// What the reading thread sends: the events of one poll, or why following stopped.
type Batch = std::result::Result<Vec<TrainEvent>, String>;

/// A watched run's `events.jsonl`, read and parsed on its own thread (a long run's log takes
/// a while to parse), and handed to the dashboard a bounded number of events at a time.
pub struct WatchedEventLog {
    batches: UnboundedReceiver<Batch>,
    /// Events received but not yet handed out, oldest first.
    pending: VecDeque<TrainEvent>,
    /// Why following stopped, reported once `pending` is empty.
    failure: Option<String>,
}

impl WatchedEventLog {
    /// Starts reading `follower`'s file. The thread ends when following fails or when this
    /// `WatchedEventLog` is dropped (it notices at its next poll).
    pub fn spawn(mut follower: EventLogTail) -> Self {
        let (sender, batches) = unbounded_channel();
        let reader = move || loop {
            let batch = follower.poll().map_err(|err| format!("{err:#}"));
            let failed = batch.is_err();
            let empty = batch.as_ref().is_ok_and(Vec::is_empty);
            if (!empty && sender.send(batch).is_err()) || failed || sender.is_closed() {
                return;
            }
            thread::sleep(FOLLOW_INTERVAL);
        };
        if let Err(err) = thread::Builder::new().name("events-follower".into()).spawn(reader) {
            // Without the thread there is nothing to show; say so instead of waiting forever.
            let (sender, batches) = unbounded_channel();
            let _ = sender.send(Err(format!("cannot start reading the events: {err}")));
            return Self::from_batches(batches);
        }
        Self::from_batches(batches)
    }

    fn from_batches(batches: UnboundedReceiver<Batch>) -> Self {
        Self { batches, pending: VecDeque::new(), failure: None }
    }

    /// Up to `limit` events read so far, oldest first, without waiting. An error (once the
    /// events read before it have been handed out) means following has stopped.
    pub fn take(&mut self, limit: usize) -> Result<Vec<TrainEvent>> {
        while self.pending.len() < limit && self.failure.is_none() {
            match self.batches.try_recv() {
                Ok(Ok(events)) => self.pending.extend(events),
                Ok(Err(message)) => self.failure = Some(message),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        if self.pending.is_empty() {
            if let Some(message) = self.failure.take() {
                return Err(anyhow!(message));
            }
        }
        let count = limit.min(self.pending.len());
        Ok(self.pending.drain(..count).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::StepRecord;

    fn step(global_step: usize) -> TrainEvent {
        TrainEvent::Step(StepRecord {
            epoch: 1,
            global_step,
            loss: 1.0,
            components: Default::default(),
            lr: 1e-3,
            samples: 32,
            samples_per_second: 100.0,
            device_memory: None,
        })
    }

    fn step_numbers(events: &[TrainEvent]) -> Vec<usize> {
        events
            .iter()
            .map(|e| match e {
                TrainEvent::Step(s) => s.global_step,
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    }

    #[test]
    fn a_large_backlog_is_handed_out_in_bounded_slices_in_order() {
        let (sender, batches) = unbounded_channel();
        sender.send(Ok((1..=2_500).map(step).collect())).unwrap();
        sender.send(Ok(vec![step(2_501)])).unwrap();
        sender.send(Err("the file shrank".to_string())).unwrap();
        let mut run = WatchedEventLog::from_batches(batches);

        assert_eq!(step_numbers(&run.take(1_000).unwrap()), (1..=1_000).collect::<Vec<_>>());
        assert_eq!(step_numbers(&run.take(1_000).unwrap()), (1_001..=2_000).collect::<Vec<_>>());
        let rest = run.take(1_000).unwrap();
        assert_eq!(step_numbers(&rest), (2_001..=2_501).collect::<Vec<_>>());
        let err = run.take(1_000).unwrap_err();
        assert!(err.to_string().contains("shrank"), "{err}");
    }

    #[test]
    fn nothing_new_is_an_empty_take() {
        let (_sender, batches) = unbounded_channel();
        let mut run = WatchedEventLog::from_batches(batches);
        assert!(run.take(10).unwrap().is_empty());
    }

    #[test]
    fn the_thread_reads_events_appended_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let line = |n| serde_json::to_string(&step(n)).unwrap() + "\n";
        std::fs::write(&path, line(1) + &line(2)).unwrap();
        let mut run = WatchedEventLog::spawn(EventLogTail::new(&path));
        let mut seen = Vec::new();
        // Waits for the thread's polls; the bound only keeps a broken test from hanging.
        for _ in 0..500 {
            seen.extend(step_numbers(&run.take(1).unwrap()));
            if seen.len() == 2 {
                break;
            }
            thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(seen, [1, 2], "one event per take, in file order");
    }
}
