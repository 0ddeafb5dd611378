//! A run's events on their way out: appended to its `events.jsonl` and passed on to the
//! caller. A failed write does not interrupt training; the first one is reported at the end.

use anyhow::Result;

use crate::events::{EventSink, JsonlSink, TrainEvent};
use crate::runs::RunDir;

pub(crate) struct RunLog<'a> {
    file: JsonlSink,
    forward: &'a mut dyn FnMut(&TrainEvent) -> Result<()>,
    error: Option<anyhow::Error>,
}

impl<'a> RunLog<'a> {
    /// Appends to `run`'s event log (a resumed run continues its log).
    pub fn open(
        run: &RunDir,
        forward: &'a mut dyn FnMut(&TrainEvent) -> Result<()>,
    ) -> Result<Self> {
        Ok(Self { file: JsonlSink::append(&run.events())?, forward, error: None })
    }

    pub fn emit(&mut self, event: TrainEvent) {
        let logged = self.file.emit(&event);
        let forwarded = (self.forward)(&event);
        if let Err(error) = logged.and(forwarded) {
            self.error.get_or_insert(error);
        }
    }

    /// The first write that failed, if any.
    pub fn finish(self) -> Result<()> {
        self.error.map_or(Ok(()), Err)
    }
}
