//! The run directory format: the one place that writes and reads what a run leaves behind.
//!
//! ```text
//! runs/<run-id>/
//!   config.toml        the resolved configuration (reproduces the run)
//!   events.jsonl       every event, one JSON object per line, with its wall-clock `time`
//!   report.json        validation metrics of the best epoch, and the run's status
//!   metrics.csv        one row per completed epoch: losses, F1s, learning rate
//!   predictions.jsonl  the best epoch's prediction for each validation sample
//!   state.json         progress, for resuming
//!   provenance.json    what produced it: version, commit, command line, host, times, encoders
//!   run.log            warnings and errors logged while it trained
//!   best.safetensors   weights of the best epoch (and its training state)
//!   last.safetensors   weights, training state and optimizer moments at the last
//!                      completed epoch: what `--resume` continues from
//! runs/cv-<stamp>-<label>/
//!   fold-<i>/          one run directory per fold
//!   cv.json            the scores over all folds
//! ```
//!
//! The trainer writes it, keeping it consistent at every epoch boundary; `eval`,
//! `predict`, `watch`, `report` and the dashboard's Runs pane read it. Nothing else names
//! its files. Runs from before `metrics.csv` and `predictions.jsonl` existed still open.

mod checkpoint;
mod dir;
mod history;
mod json;
mod predictions;
mod provenance;
mod report;

pub use checkpoint::{read_checkpoint, save_checkpoint, Checkpoint, OptimizerState};
pub use dir::{CvDir, RunDir};
pub use history::EpochRow;
pub use json::{read_json, write_json};
pub use predictions::{read_predictions, write_predictions, Prediction};
pub use provenance::{ModelProvenance, Provenance, Session};
pub use report::{Report, RunStatus, TrainState};
