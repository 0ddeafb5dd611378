//! `memescope bench`: prints the engine's speed on this machine as a table or JSON.

use std::path::Path;

use anyhow::Result;

use crate::bench::{render_finetune, render_table, BenchOptions};
use crate::config::Config;

pub fn run(config: Config, options: &BenchOptions, json: bool) -> Result<()> {
    let report = crate::bench::run(config, options)?;
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", render_table(&report));
    }
    Ok(())
}

/// `bench --finetune-export DIR`: exports one fine-tuning epoch, runs it, prints the report.
pub fn finetune(config: Config, dir: &Path, limit: Option<usize>, json: bool) -> Result<()> {
    let report = crate::bench::export_finetune(config, dir, limit)?;
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", render_finetune(&report));
    }
    Ok(())
}
