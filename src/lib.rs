//! memescope: train, compare and dissect multimodal classifiers of mental-health memes.
//!
//! The crate is layered the way data flows:
//! `data` → `encoders` (frozen, cached by `cache`) → `features` → `model` (fusion) → `train`
//! → `events` → {`tui` panes, JSONL sink}. `config` sits below them all (it imports only
//! `data` and `ocr` types); `features` builds its lexical spec from the config, so nothing
//! points back up. `runs` owns the run directory's format, which `train` writes and `tui`,
//! `predict`, `report` and `cli` read; like `events` it sits below both. `report` draws
//! figures and a summary from run directories. `plan` turns a base config into a plan of
//! runs, which `tui` and `bench` run; `sweep` turns one into command lines and runs them as
//! child processes or writes them for a scheduler. `metrics` scores predictions; `ocr`
//! reads text off new memes; `signals` turns SIGINT/SIGTERM into stop requests; `predict`
//! labels memes with a trained run; `cli` wires commands to the layers; `demo` carries the
//! bundled demo inside the binary; `logging` routes `tracing` output to the console and
//! each run's log. No module imports from a layer above it. `testing` (test checkpoint
//! builders) exists only in test builds and with the `testing` feature.

pub mod atomic_file;
pub mod bench;
pub mod cache;
pub mod cli;
pub mod config;
pub mod data;
pub mod demo;
pub mod encoders;
pub mod events;
pub mod features;
pub mod logging;
pub mod metrics;
pub mod model;
pub mod ocr;
pub mod plan;
pub mod predict;
pub mod report;
pub mod runs;
pub mod signals;
pub mod sweep;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod train;
pub mod tui;
