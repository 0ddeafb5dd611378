//! `memescope predict`: label new memes with a trained run (or several as one ensemble), as
//! a table or as JSON.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use crate::ocr::{OcrEngine, Tesseract};
use crate::predict::{expand_inputs, predict_images, Prediction};
use crate::train::load_run_ensemble;

/// Width of the probability bar at probability 1.
const BAR_WIDTH: usize = 20;

pub fn run(run_dirs: &[PathBuf], inputs: &[PathBuf], json: bool) -> Result<()> {
    let trained = load_run_ensemble(run_dirs)?;
    let (images, mut skipped) = expand_inputs(inputs);
    // Tesseract is only needed (and only checked for) when there is text to read.
    let engine = match trained.reads_text() && !images.is_empty() {
        true => Some(Tesseract::new().context("predict reads each meme's text with tesseract")?),
        false => None,
    };
    let mut log = |event| tracing::info!(?event, "predict");
    let engine = engine.as_ref().map(|e| e as &dyn OcrEngine);
    let outcome = predict_images(&trained, &images, engine, &mut log)?;
    skipped.extend(outcome.skipped);
    for skip in &skipped {
        eprintln!("skipped {}: {}", skip.path.display(), skip.reason);
    }

    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &outcome.predictions)?;
        writeln!(out)?;
    } else {
        write!(out, "{}", table(&outcome.predictions))?;
    }
    out.flush()?;
    if outcome.predictions.is_empty() {
        bail!("no image was labelled ({} input(s) skipped)", skipped.len());
    }
    Ok(())
}

/// One block per image: its path and decided labels, its text, then every label's
/// probability (most probable first), decided labels marked with `*`.
fn table(predictions: &[Prediction]) -> String {
    let width = predictions
        .iter()
        .flat_map(|p| p.probabilities.iter().map(|(label, _)| label.chars().count()))
        .max()
        .unwrap_or(0);
    let mut text = String::new();
    for (i, prediction) in predictions.iter().enumerate() {
        if i > 0 {
            text.push('\n');
        }
        let verdict = match prediction.labels.is_empty() {
            true => "(no label reaches its threshold)".to_string(),
            false => prediction.labels.join(", "),
        };
        let _ = writeln!(text, "{}: {verdict}", prediction.path.display());
        if let Some(ocr) = &prediction.text {
            let shown = if ocr.is_empty() { "(no text found)" } else { ocr.as_str() };
            let _ = writeln!(text, "  text: {shown}");
        }
        let mut ranked: Vec<&(String, f32)> = prediction.probabilities.iter().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        for (label, probability) in ranked {
            let mark = if prediction.labels.contains(label) { '*' } else { ' ' };
            let bar = "█".repeat((probability.clamp(0.0, 1.0) * BAR_WIDTH as f32).round() as usize);
            let line = format!("  {mark} {label:<width$}  {probability:.3}  {bar}");
            let _ = writeln!(text, "{}", line.trim_end());
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_ranks_labels_and_marks_the_decided_ones() {
        let prediction = Prediction {
            path: "memes/a.png".into(),
            text: Some("WHEN THE DEADLINE".into()),
            labels: vec!["Doom".into()],
            probabilities: vec![("Worry".into(), 0.25), ("Doom".into(), 0.75)],
        };
        let no_text = Prediction {
            path: "b.png".into(),
            text: Some(String::new()),
            labels: vec![],
            probabilities: vec![("Worry".into(), 0.1), ("Doom".into(), 0.2)],
        };
        let expected = "memes/a.png: Doom\n  \
                        text: WHEN THE DEADLINE\n  \
                        * Doom   0.750  ███████████████\n    \
                        Worry  0.250  █████\n\
                        \n\
                        b.png: (no label reaches its threshold)\n  \
                        text: (no text found)\n    \
                        Doom   0.200  ████\n    \
                        Worry  0.100  ██\n";
        assert_eq!(table(&[prediction, no_text]), expected);
    }
}
