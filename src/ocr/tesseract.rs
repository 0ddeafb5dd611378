//! The Tesseract engine, driven through its command-line tool.

use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use super::prepare::{prepare, PREPARE_VERSION};
use super::{normalize_text, OcrEngine};

const INSTALL_HINT: &str =
    "install it with `sudo apt-get install tesseract-ocr tesseract-ocr-eng` \
     (Debian/Ubuntu) or `brew install tesseract` (macOS)";

/// Tesseract OCR. Construction checks that the binary runs and has the language data, so a
/// missing install is reported once, up front, instead of once per image.
#[derive(Debug, Clone)]
pub struct Tesseract {
    binary: PathBuf,
    language: String,
    page_segmentation: u32,
    name: String,
}

impl Tesseract {
    /// `tesseract` from `PATH`, English, page segmentation mode 6 (one block of text: after
    /// preprocessing a meme is its caption lines on an empty page).
    pub fn new() -> Result<Self> {
        Self::with_options("tesseract", "eng", 6)
    }

    /// A specific binary, language (`-l`) and page segmentation mode (`--psm`).
    pub fn with_options(
        binary: impl Into<PathBuf>,
        language: &str,
        page_segmentation: u32,
    ) -> Result<Self> {
        let binary = binary.into();
        let version = run_for_text(&binary, &["--version"])?;
        let version = parse_version(&version).with_context(|| {
            format!("`{} --version` did not print a tesseract version", binary.display())
        })?;
        let installed = run_for_text(&binary, &["--list-langs"])?;
        // `-l` takes several languages joined by `+` (`eng+deu`); each needs its data.
        for wanted in language.split('+') {
            if !installed.lines().any(|l| l.trim() == wanted) {
                bail!(
                    "tesseract at {} has no `{wanted}` language data; {INSTALL_HINT} \
                     (or the tesseract-ocr-{wanted} package)",
                    binary.display()
                );
            }
        }
        let name = format!(
            "tesseract-{version} lang={language} psm={page_segmentation} prepare={PREPARE_VERSION}"
        );
        Ok(Self { binary, language: language.to_string(), page_segmentation, name })
    }

    /// Runs tesseract on one PNG given on stdin; returns its words with their confidence.
    fn read_words(&self, png: &[u8], image_path: &Path) -> Result<Vec<Word>> {
        let psm = self.page_segmentation.to_string();
        let mut child = Command::new(&self.binary)
            .args(["stdin", "stdout", "-l", &self.language, "--psm", &psm, "tsv"])
            // One thread per image: tesseract's OpenMP threads cost more than they save on
            // meme-sized images (about 3x slower here).
            .env("OMP_THREAD_LIMIT", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        // Tesseract reads all of stdin before writing anything, so writing first cannot
        // deadlock on a full stdout pipe.
        let mut stdin = child.stdin.take().context("tesseract stdin was not captured")?;
        let written = stdin.write_all(png);
        drop(stdin);
        let output = child
            .wait_with_output()
            .with_context(|| format!("running tesseract on {}", image_path.display()))?;
        if !output.status.success() {
            bail!(
                "tesseract failed on {} ({}): {}",
                image_path.display(),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        written.with_context(|| format!("sending {} to tesseract", image_path.display()))?;
        Ok(parse_tsv(&String::from_utf8_lossy(&output.stdout)))
    }
}

impl OcrEngine for Tesseract {
    fn name(&self) -> &str {
        &self.name
    }

    fn recognize(&self, image_path: &Path) -> Result<String> {
        let candidates = prepare(image_path)?;
        let white = self.read_words(&candidates.white_caption, image_path)?;
        let gray = self.read_words(&candidates.grayscale, image_path)?;
        let best = if confident_chars(&white) >= confident_chars(&gray) { white } else { gray };
        let text: Vec<&str> = best.iter().map(|w| w.text.as_str()).collect();
        Ok(normalize_text(&text.join(" ")))
    }
}

/// Runs the binary with `args` and returns what it printed (tesseract 3 printed its
/// version on stderr, later versions on stdout).
fn run_for_text(binary: &Path, args: &[&str]) -> Result<String> {
    let output = match Command::new(binary).args(args).output() {
        Ok(output) => output,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            bail!("tesseract not found (looked for `{}`); {INSTALL_HINT}", binary.display())
        }
        Err(e) => return Err(e).with_context(|| format!("running {}", binary.display())),
    };
    if !output.status.success() {
        bail!(
            "`{} {}` failed ({}): {}",
            binary.display(),
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push('\n');
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    Ok(text)
}

/// `tesseract 5.3.0` (first line of `--version`) → `5.3.0`.
fn parse_version(text: &str) -> Option<String> {
    text.lines()
        .find_map(|line| line.trim().strip_prefix("tesseract "))
        .map(|v| v.trim().trim_start_matches('v').to_string())
        .filter(|v| !v.is_empty())
}

/// One recognised word and Tesseract's confidence in it (0..=100).
#[derive(Debug, Clone, PartialEq)]
struct Word {
    text: String,
    confidence: f32,
}

/// The word rows (level 5) of Tesseract's TSV output, in reading order.
fn parse_tsv(tsv: &str) -> Vec<Word> {
    tsv.lines()
        .skip(1)
        .filter_map(|line| {
            let columns: Vec<&str> = line.split('\t').collect();
            if columns.len() < 12 || columns[0] != "5" {
                return None;
            }
            let text = columns[11].trim();
            let confidence = columns[10].parse::<f32>().ok()?;
            (!text.is_empty()).then(|| Word { text: text.to_string(), confidence })
        })
        .collect()
}

/// How much text a reading found, weighted by how sure Tesseract is of it. Words below
/// 50% confidence count against the reading: a grayscale reading of a busy meme finds
/// plenty of "characters" in the picture, all of them unsure. (On the bundled demo memes
/// this picks the better reading more often than either reading alone, or than counting
/// every character by its confidence.)
fn confident_chars(words: &[Word]) -> f32 {
    words
        .iter()
        .map(|w| (w.confidence.max(0.0) - 50.0) / 50.0 * w.text.chars().count() as f32)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_from_the_first_line() {
        assert_eq!(parse_version("tesseract 5.3.0\n leptonica-1.82.0\n").as_deref(), Some("5.3.0"));
        assert_eq!(parse_version("tesseract v5.4.1.20240606\n").as_deref(), Some("5.4.1.20240606"));
        assert_eq!(parse_version("something else"), None);
    }

    #[test]
    fn tsv_words_keep_order_and_confidence() {
        let tsv = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext\n\
            1\t1\t0\t0\t0\t0\t0\t0\t480\t480\t-1\t\n\
            4\t1\t1\t1\t1\t0\t20\t21\t440\t52\t-1\t\n\
            5\t1\t1\t1\t1\t1\t20\t33\t85\t30\t96.5\tme\n\
            5\t1\t1\t1\t1\t2\t132\t21\t328\t52\t80\tpretending\n\
            5\t1\t1\t1\t1\t3\t132\t21\t328\t52\t95\t \n";
        let words = parse_tsv(tsv);
        assert_eq!(
            words,
            [
                Word { text: "me".into(), confidence: 96.5 },
                Word { text: "pretending".into(), confidence: 80.0 }
            ]
        );
        assert!((confident_chars(&words) - (0.93 * 2.0 + 0.6 * 10.0)).abs() < 1e-4);
        let unsure = [Word { text: "Ante".into(), confidence: 20.0 }];
        assert!(confident_chars(&unsure) < 0.0);
    }

    #[test]
    fn a_missing_binary_says_how_to_install_it() {
        let error = Tesseract::with_options("/nonexistent/bin/tesseract", "eng", 6).unwrap_err();
        let message = format!("{error:#}");
        assert!(message.contains("tesseract not found"), "{message}");
        assert!(message.contains("apt-get install tesseract-ocr tesseract-ocr-eng"), "{message}");
        assert!(message.contains("brew install tesseract"), "{message}");
    }
}
