//! Dashboard tests: rendering with ratatui's `TestBackend` and key handling on `App`,
//! both fed from a recorded event sequence (`fixture`).

pub(crate) mod fixture;
mod keys;
mod render;
