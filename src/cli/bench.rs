//! `memescope bench`: prints the engine's speed on this machine as a table or JSON.

use anyhow::Result;

use crate::bench::{render_table, BenchOptions};
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
