//! Tiny random checkpoints and synthetic datasets for tests and demos.
