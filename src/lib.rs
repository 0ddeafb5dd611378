//! memescope: train, compare and dissect multimodal classifiers of mental-health memes.
//!
//! The crate is layered the way data flows:
//! `data` → `encoders` (frozen, cached by `cache`) → `model` (fusion) → `train`
//! → `events` → {`tui` panes, JSONL sink}. `runs` owns the run directory's format, which
//! `train` writes and `tui`, `predict` and `cli` read; like `events` it sits below both.
//! `metrics` scores predictions; `ocr` reads text off new memes; `predict` labels them
//! with a trained run; `cli` wires commands to the layers. No module imports from a layer
//! above it.

pub mod bench;
pub mod cache;
pub mod cli;
pub mod config;
pub mod data;
pub mod encoders;
pub mod events;
pub mod features;
pub mod metrics;
pub mod model;
pub mod ocr;
pub mod predict;
pub mod runs;
pub mod testing;
pub mod train;
pub mod tui;
