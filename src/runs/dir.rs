//! Where each file of a run directory lives, and creating, opening and listing them.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::history::{append_epoch_row, read_epoch_rows, EpochRow};
use super::json::{read_json, write_json};
use super::predictions::{read_predictions, write_predictions, Prediction};
use super::provenance::Provenance;
use super::report::{Report, TrainState};
use crate::config::{Ablation, Config};
use crate::events::{read_events, TrainEvent};

const CONFIG: &str = "config.toml";
const EVENTS: &str = "events.jsonl";
const REPORT: &str = "report.json";
const STATE: &str = "state.json";
const BEST: &str = "best.safetensors";
const LAST: &str = "last.safetensors";
const PROVENANCE: &str = "provenance.json";
const LOG: &str = "run.log";
const METRICS: &str = "metrics.csv";
const PREDICTIONS: &str = "predictions.jsonl";
const HELD_OUT: &str = "held-out.jsonl";
/// Where archived runs go, under the runs directory (not a run: it has no event log).
const ARCHIVE: &str = "archive";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    pub id: String,
    pub path: PathBuf,
}

impl RunDir {
    /// Creates a fresh, uniquely named run directory under `root`.
    pub fn create(root: &Path, ablation: &Ablation) -> Result<Self> {
        let (id, path) = create_unique(root, "", ablation)?;
        Ok(Self { id, path })
    }

    /// Creates the run directory `path` itself (its parent must exist); fails if it exists.
    pub fn open_new(path: &Path) -> Result<Self> {
        std::fs::create_dir(path)
            .with_context(|| format!("creating run dir {}", path.display()))?;
        Ok(Self::at(path))
    }

    /// Opens a complete run directory: one with its `config.toml`.
    pub fn open(path: &Path) -> Result<Self> {
        let run = Self::at(path);
        if !run.config().is_file() {
            anyhow::bail!("{} is not a run directory (no {CONFIG})", path.display());
        }
        Ok(run)
    }

    /// The run directory at `path`, whatever it holds yet: a run being created, or one
    /// being listed, may still lack files.
    pub fn at(path: &Path) -> Self {
        let id = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        Self { id, path: path.to_path_buf() }
    }

    /// The runs directly under `root` that have an event log, by id. A missing `root`
    /// has none.
    pub fn list(root: &Path) -> Vec<Self> {
        let Ok(entries) = std::fs::read_dir(root) else {
            return Vec::new();
        };
        let mut runs: Vec<Self> = entries
            .filter_map(|entry| entry.ok().map(|e| Self::at(&e.path())))
            .filter(|run| run.events().is_file())
            .collect();
        runs.sort_by(|a, b| a.path.cmp(&b.path));
        runs
    }

    /// Moves the run to `<runs>/archive/<id>`, out of listings (nothing is deleted).
    /// Fails rather than overwrite an archived run of the same id.
    pub fn archive(&self) -> Result<Self> {
        let parent = self.path.parent().unwrap_or(Path::new("."));
        let archive = parent.join(ARCHIVE);
        std::fs::create_dir_all(&archive)
            .with_context(|| format!("creating {}", archive.display()))?;
        let target = archive.join(&self.id);
        if target.exists() {
            anyhow::bail!("cannot archive {}: {} exists", self.path.display(), target.display());
        }
        std::fs::rename(&self.path, &target)
            .with_context(|| format!("moving {} to {}", self.path.display(), target.display()))?;
        Ok(Self::at(&target))
    }

    pub fn config(&self) -> PathBuf {
        self.path.join(CONFIG)
    }
    pub fn events(&self) -> PathBuf {
        self.path.join(EVENTS)
    }
    pub fn report(&self) -> PathBuf {
        self.path.join(REPORT)
    }
    pub fn state(&self) -> PathBuf {
        self.path.join(STATE)
    }
    pub fn best_checkpoint(&self) -> PathBuf {
        self.path.join(BEST)
    }
    pub fn last_checkpoint(&self) -> PathBuf {
        self.path.join(LAST)
    }
    pub fn metrics_csv(&self) -> PathBuf {
        self.path.join(METRICS)
    }
    pub fn predictions(&self) -> PathBuf {
        self.path.join(PREDICTIONS)
    }
    /// A cross-validation fold's predictions on its held-out part (best checkpoint): what
    /// `memescope ensemble` averages across folds of different setups.
    pub fn held_out_predictions(&self) -> PathBuf {
        self.path.join(HELD_OUT)
    }

    pub fn provenance(&self) -> PathBuf {
        self.path.join(PROVENANCE)
    }
    /// The run's own log: the warnings and errors logged while it trained.
    pub fn log(&self) -> PathBuf {
        self.path.join(LOG)
    }

    /// What produced the run so far; empty for a run that predates provenance records.
    pub fn read_provenance(&self) -> Result<Provenance> {
        let path = self.provenance();
        Ok(if path.exists() { read_json(&path)? } else { Provenance::default() })
    }

    pub fn write_provenance(&self, provenance: &Provenance) -> Result<()> {
        write_json(&self.provenance(), provenance)
    }

    /// Writes the resolved configuration that reproduces the run.
    pub fn write_config(&self, config: &Config) -> Result<()> {
        crate::atomic_file::write_atomic(&self.config(), config.to_toml_string().as_bytes())
    }

    /// The run's configuration, as it trained.
    pub fn read_config(&self) -> Result<Config> {
        Config::load(&self.config(), &[])
    }

    /// The best epoch's report; `None` before the first epoch has ended.
    pub fn read_report(&self) -> Result<Option<Report>> {
        let path = self.report();
        Ok(if path.exists() { Some(read_json(&path)?) } else { None })
    }

    /// Every event of the run's log so far; none when it has no log.
    pub fn read_events(&self) -> Result<Vec<TrainEvent>> {
        let path = self.events();
        if path.exists() {
            read_events(&path)
        } else {
            Ok(Vec::new())
        }
    }

    /// Appends a completed epoch to `metrics.csv`.
    pub fn append_epoch(&self, row: &EpochRow) -> Result<()> {
        append_epoch_row(&self.metrics_csv(), row)
    }

    /// The completed epochs, from `metrics.csv`, or from the event log of a run that
    /// predates it.
    pub fn read_epochs(&self) -> Result<Vec<EpochRow>> {
        if self.metrics_csv().exists() {
            read_epoch_rows(&self.metrics_csv())
        } else {
            Ok(EpochRow::from_events(&self.read_events()?))
        }
    }

    /// Replaces the best epoch's validation predictions.
    pub fn write_predictions(&self, predictions: &[Prediction]) -> Result<()> {
        write_predictions(&self.predictions(), predictions)
    }

    /// The best epoch's validation predictions; `None` for a run that has not written them
    /// (before its first epoch, or from before they existed).
    pub fn read_predictions(&self) -> Result<Option<Vec<Prediction>>> {
        let path = self.predictions();
        Ok(if path.exists() { Some(read_predictions(&path)?) } else { None })
    }

    /// The progress to resume from; a fresh state before the first epoch has ended.
    pub fn read_state(&self) -> Result<TrainState> {
        let path = self.state();
        Ok(if path.exists() { read_json(&path)? } else { TrainState::default() })
    }
}

/// A cross-validation directory: one run directory per fold, and `cv.json` over them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CvDir {
    pub path: PathBuf,
}

impl CvDir {
    /// Creates a fresh, uniquely named `cv-…` directory under `root`.
    pub fn create(root: &Path, ablation: &Ablation) -> Result<Self> {
        let (_, path) = create_unique(root, "cv-", ablation)?;
        Ok(Self { path })
    }

    /// Creates the run directory of the 1-based `fold`.
    pub fn create_fold(&self, fold: usize) -> Result<RunDir> {
        RunDir::open_new(&self.fold(fold).path)
    }

    /// The run directory of fold `fold` (1-based).
    pub fn fold(&self, fold: usize) -> RunDir {
        RunDir::at(&self.path.join(format!("fold-{fold}")))
    }

    /// The summary over all folds.
    pub fn summary(&self) -> PathBuf {
        self.path.join("cv.json")
    }
}

/// Creates `<root>/<kind><stamp>-<host>-<switches off>` (with `-2`, `-3`… on a clash) and
/// returns its id and path. `kind` (e.g. `cv-`) keeps directories of different kinds made
/// by parallel processes in the same second apart. The host's name keeps apart runs that
/// machines sharing the runs folder start in the same second even where the shared
/// filesystem's `mkdir` is not atomic; runs of one machine rely on its `mkdir` failing
/// on an existing directory.
fn create_unique(root: &Path, kind: &str, ablation: &Ablation) -> Result<(String, PathBuf)> {
    std::fs::create_dir_all(root)
        .with_context(|| format!("creating runs directory {}", root.display()))?;
    let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S");
    let stamp = match short_hostname() {
        Some(host) => format!("{stamp}-{host}"),
        None => stamp.to_string(),
    };
    let label: String = ablation
        .short_label()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .split('-')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    let label = if label.is_empty() { "run".into() } else { label };
    let base = format!("{kind}{stamp}-{label}");
    for attempt in 1.. {
        let id = if attempt == 1 { base.clone() } else { format!("{base}-{attempt}") };
        let path = root.join(&id);
        // create_dir (not _all) fails if it exists: two runs never share a directory.
        match std::fs::create_dir(&path) {
            Ok(()) => return Ok((id, path)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(e).with_context(|| format!("creating run dir {}", path.display()))
            }
        }
    }
    unreachable!("the loop only ends by returning")
}

/// This machine's name up to its first dot, letters and digits only, at most 16 of them;
/// `None` when it has none.
fn short_hostname() -> Option<String> {
    let mut buffer = [0u8; 256];
    // SAFETY: gethostname writes at most `len` bytes into the buffer we own.
    let status = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
    if status != 0 {
        return None;
    }
    let name = buffer.split(|&b| b == 0 || b == b'.').next().unwrap_or_default();
    let name: String = name
        .iter()
        .filter(|b| b.is_ascii_alphanumeric())
        .take(16)
        .map(|&b| char::from(b.to_ascii_lowercase()))
        .collect();
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_unique_and_name_the_switches() {
        let root = tempfile::tempdir().unwrap();
        let ablation = Ablation { moe: false, ..Default::default() };
        let a = RunDir::create(root.path(), &ablation).unwrap();
        let b = RunDir::create(root.path(), &ablation).unwrap();
        assert_ne!(a.path, b.path);
        assert!(a.id.ends_with("moe"), "{}", a.id);
        if let Some(host) = short_hostname() {
            assert!(a.id.contains(&format!("-{host}-")), "{} names the machine", a.id);
        }
        assert!(RunDir::open(&a.path).is_err(), "no config.toml yet");
    }

    #[test]
    fn runs_started_at_once_by_two_dashboards_never_share_a_directory() {
        // Two dashboards on one runs directory start runs in the same second: each creation
        // claims its directory atomically, so the ids differ and every run is alone in its own.
        let root = tempfile::tempdir().unwrap();
        let barrier = std::sync::Barrier::new(8);
        let runs: Vec<RunDir> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    scope.spawn(|| {
                        barrier.wait();
                        RunDir::create(root.path(), &Ablation::default()).unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut ids: Vec<&str> = runs.iter().map(|r| r.id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 8, "{ids:?}");
        assert!(runs.iter().all(|r| r.path.is_dir()));
    }

    #[test]
    fn listing_finds_runs_with_an_event_log_in_id_order() {
        let root = tempfile::tempdir().unwrap();
        for id in ["b", "a", "no-log"] {
            std::fs::create_dir(root.path().join(id)).unwrap();
        }
        for id in ["b", "a"] {
            std::fs::write(RunDir::at(&root.path().join(id)).events(), "").unwrap();
        }
        let ids: Vec<String> = RunDir::list(root.path()).into_iter().map(|r| r.id).collect();
        assert_eq!(ids, ["a", "b"]);
        assert!(RunDir::list(&root.path().join("missing")).is_empty());
    }

    #[test]
    fn archiving_moves_a_run_out_of_the_listing_and_never_overwrites() {
        let root = tempfile::tempdir().unwrap();
        let run = RunDir::open_new(&root.path().join("r1")).unwrap();
        std::fs::write(run.events(), "").unwrap();
        let archived = run.archive().unwrap();
        assert_eq!(archived.path, root.path().join("archive").join("r1"));
        assert!(archived.events().is_file() && !run.path.exists());
        assert!(RunDir::list(root.path()).is_empty());
        let again = RunDir::open_new(&root.path().join("r1")).unwrap();
        assert!(format!("{:#}", again.archive().unwrap_err()).contains("exists"));
        assert!(again.path.exists());
    }

    #[test]
    fn a_run_before_its_first_epoch_has_no_report_and_a_fresh_state() {
        let root = tempfile::tempdir().unwrap();
        let run = RunDir::create(root.path(), &Ablation::default()).unwrap();
        assert_eq!(run.read_report().unwrap(), None);
        assert_eq!(run.read_state().unwrap(), TrainState::default());
        std::fs::write(run.state(), "{").unwrap();
        assert!(format!("{:#}", run.read_state().unwrap_err()).contains("state.json"));
    }

    #[test]
    fn cv_folds_are_run_directories_inside_the_cv_directory() {
        let root = tempfile::tempdir().unwrap();
        let cv = CvDir::create(root.path(), &Ablation::default()).unwrap();
        assert!(cv.path.file_name().unwrap().to_string_lossy().starts_with("cv-"));
        let fold = cv.create_fold(2).unwrap();
        assert_eq!((fold.id.as_str(), fold.path.parent()), ("fold-2", Some(cv.path.as_path())));
        assert!(cv.create_fold(2).is_err(), "a fold directory is never reused");
        assert_eq!(cv.summary(), cv.path.join("cv.json"));
    }
}
