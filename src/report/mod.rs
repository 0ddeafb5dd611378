//! `memescope report`: figures a paper can use, and a Markdown summary, from run
//! directories.
//!
//! ```text
//! <out>/
//!   summary.md                    runs, config differences, F1s, mean ± std over seeds
//!   loss.{png,svg}                training and validation loss per epoch
//!   class-f1.{png,svg}            per-class F1 of each run's best epoch, side by side
//!   confusion-<run>.{png,svg}     each single-label run's confusion matrix
//!   gates-<run>.{png,svg}         each mixture-of-experts run's gate usage per class
//! ```
//!
//! Everything is read through [`crate::runs`]; a figure whose data no run has is left out
//! and the summary says what was missing.

mod canvas;
mod figures;
mod loaded;
mod summary;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use canvas::render;
use figures::{confusion_heatmap, gate_heatmap, ClassF1, LossCurves};
use loaded::open_runs;
use summary::summary_markdown;

/// Writes the report of the runs in `run_dirs` into `out` (created if needed); returns the
/// files written, the summary last.
pub fn write_report(run_dirs: &[PathBuf], out: &Path) -> Result<Vec<PathBuf>> {
    if run_dirs.is_empty() {
        bail!("no run directory given");
    }
    let runs = open_runs(run_dirs)?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut written = Vec::new();
    // (title, file) of each figure, for the summary's links.
    let mut figures = Vec::new();
    let mut add = |title: String, files: Vec<PathBuf>| {
        if let Some(png) = files.first().and_then(|p| p.file_name()) {
            figures.push((title, png.to_string_lossy().into_owned()));
        }
        written.extend(files);
    };
    if let Some(figure) = LossCurves::of(&runs) {
        add("Loss curves".into(), render(&figure, out, "loss")?);
    }
    if let Some(figure) = ClassF1::of(&runs) {
        add("Per-class F1".into(), render(&figure, out, "class-f1")?);
    }
    for run in &runs {
        let stem = file_stem(&run.name);
        if let Some(figure) = confusion_heatmap(run) {
            let files = render(&figure, out, &format!("confusion-{stem}"))?;
            add(format!("Confusion matrix, {}", run.name), files);
        }
        if let Some(figure) = gate_heatmap(run) {
            let files = render(&figure, out, &format!("gates-{stem}"))?;
            add(format!("Gate usage per class, {}", run.name), files);
        }
    }
    let summary_path = out.join("summary.md");
    std::fs::write(&summary_path, summary_markdown(&runs, &figures))
        .with_context(|| format!("writing {}", summary_path.display()))?;
    written.push(summary_path);
    Ok(written)
}

/// A run name as part of a file name: `parent/name` becomes `parent-name`.
fn file_stem(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' })
        .collect()
}
