//! Handing a plan of runs to whatever runs them: each planned run becomes one
//! self-contained `memescope train --headless` command line ([`TrainCommand`]), which this
//! machine runs one after another ([`local`]) or a scheduler runs anywhere that shares the
//! runs folder ([`emit`]: a Slurm job array, or a plain list for GNU parallel or a
//! Kubernetes indexed Job). memescope schedules nothing itself.

mod command;
pub mod emit;
pub mod local;

pub use command::{shell_quote, TrainCommand};
