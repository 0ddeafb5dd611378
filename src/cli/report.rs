//! `memescope report`: figures and a Markdown summary from run directories.

use std::path::{Path, PathBuf};

use anyhow::Result;

pub fn run(run_dirs: &[PathBuf], out: &Path) -> Result<()> {
    for path in crate::report::write_report(run_dirs, out)? {
        println!("{}", path.display());
    }
    Ok(())
}
