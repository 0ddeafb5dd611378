//! The command line: each subcommand is a thin layer over the library.

mod bench;
mod cache;
mod cv;
mod eval;
mod predict;
mod progress;
mod report;
mod train;

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use crate::config::Config;
use crate::ocr::OcrPolicy;

/// Train, compare and dissect multimodal classifiers of mental-health memes.
#[derive(Debug, Parser)]
#[command(name = "memescope", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Open the dashboard and train from it (the default command).
    Tui(ConfigArgs),
    /// Train a model; prints the run directory.
    Train {
        #[command(flatten)]
        config: ConfigArgs,
        /// Plain progress lines instead of the dashboard (implied when stdout is not a
        /// terminal, and with --resume).
        #[arg(long)]
        headless: bool,
        /// Continue an interrupted run from its last completed epoch.
        #[arg(long, value_name = "RUN_DIR", conflicts_with = "config")]
        resume: Option<PathBuf>,
    },
    /// Evaluate a trained run on a labelled file; prints a JSON report.
    Eval {
        #[arg(long, value_name = "RUN_DIR")]
        run: PathBuf,
        #[arg(long, value_name = "FILE")]
        data: PathBuf,
        #[arg(long, value_name = "DIR")]
        images: Option<PathBuf>,
        /// Also write each sample's truth, label probabilities and predicted labels to FILE
        /// (JSON lines, the format of a run's predictions.jsonl).
        #[arg(long, value_name = "FILE")]
        predictions: Option<PathBuf>,
    },
    /// Label new memes (image files and/or folders of them) with a trained run: reads each
    /// image's text by OCR and prints every label's probability.
    Predict {
        #[arg(long, value_name = "RUN_DIR")]
        run: PathBuf,
        /// Image files, or folders whose image files (jpg, jpeg, png, webp) are all labelled.
        #[arg(value_name = "IMAGE", required = true)]
        images: Vec<PathBuf>,
        /// One JSON array (an object per image: path, text, labels, probabilities) instead
        /// of the table.
        #[arg(long)]
        json: bool,
    },
    /// Encode a config's datasets into the feature cache (reports throughput and hits).
    Cache(ConfigArgs),
    /// Stratified k-fold cross-validation on the training file; prints mean ± std of the
    /// folds' macro- and weighted-F1 and writes `cv.json` under `<runs>/cv-*`.
    Cv {
        #[command(flatten)]
        config: ConfigArgs,
        #[arg(long, default_value_t = 5)]
        folds: usize,
        /// Seed of the fold assignment (default: data.split_seed).
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Measure encoder throughput, head-training speed and peak memory on this machine.
    Bench {
        #[command(flatten)]
        config: ConfigArgs,
        /// Records to encode and train on (default: ../shared/data/axiom/train.json when
        /// present, generated AxiOM-format records otherwise).
        #[arg(long, value_name = "FILE")]
        data: Option<PathBuf>,
        /// Use only the first N records.
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
        /// Epochs of the timed head-training run.
        #[arg(long, default_value_t = 3)]
        epochs: usize,
        /// Also time the leave-one-out ablation sweep (with the config's epochs).
        #[arg(long)]
        sweep: bool,
        /// Write the encoder's output (texts, layers, hidden) to FILE.npy, in record order.
        #[arg(long, value_name = "FILE")]
        dump_embeddings: Option<PathBuf>,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Figures (PNG and SVG) and a Markdown summary from run directories: loss curves,
    /// per-class F1, confusion matrices, gate usage, and a table of the runs' config
    /// differences and F1s (mean ± std over runs that differ only by train.seed). Prints
    /// the files written.
    Report {
        /// Run directories (each with its config.toml), in the order tables list them.
        #[arg(value_name = "RUN_DIR", required = true)]
        runs: Vec<PathBuf>,
        /// Folder for the figures and summary.md (created if missing; files are replaced).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Follow a run's events live (or replay a finished run) in the dashboard.
    Watch {
        #[arg(value_name = "RUN_DIR")]
        run: PathBuf,
    },
}

#[derive(Debug, Clone, Args)]
pub struct ConfigArgs {
    /// The run configuration (TOML).
    #[arg(long, short, value_name = "FILE", default_value = "configs/demo.toml")]
    pub config: PathBuf,
    /// Override a config value, e.g. `--set ablation.moe=false` (repeatable).
    #[arg(long = "set", value_name = "SECTION.KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Which training records get their text by OCR of their image (sets `data.ocr`):
    /// `missing` reads only records without an `ocr_text` field.
    #[arg(long, value_enum, value_name = "WHEN")]
    pub ocr: Option<OcrPolicy>,
}

impl ConfigArgs {
    pub fn load(&self) -> Result<Config> {
        let mut config = Config::load(&self.config, &self.overrides)?;
        if let Some(policy) = self.ocr {
            config.data.ocr = policy;
        }
        Ok(config)
    }
}

pub fn main() -> Result<()> {
    configure_threads();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let command = cli.command.unwrap_or_else(|| {
        Command::Tui(ConfigArgs {
            config: "configs/demo.toml".into(),
            overrides: Vec::new(),
            ocr: None,
        })
    });
    runtime.block_on(async move {
        match command {
            Command::Tui(args) => {
                let config = args.load()?;
                let runs = config.paths.runs.clone();
                crate::tui::run_live(config, runs).await
            }
            Command::Train { config, headless, resume }
                if !headless && resume.is_none() && std::io::stdout().is_terminal() =>
            {
                let config = config.load()?;
                let runs = config.paths.runs.clone();
                crate::tui::train_live(config, runs).await
            }
            Command::Train { config, resume, .. } => {
                train::run(resume.map_or_else(
                    || config.load().map(|c| train::Job::Fresh(Box::new(c))),
                    |dir| Ok(train::Job::Resume(dir)),
                )?)
                .await
            }
            Command::Eval { run, data, images, predictions } => {
                eval::run(&run, &data, images.as_deref(), predictions.as_deref())
            }
            Command::Predict { run, images, json } => predict::run(&run, &images, json),
            Command::Cache(args) => cache::run(&args.load()?),
            Command::Cv { config, folds, seed } => cv::run(config.load()?, folds, seed),
            Command::Bench { config, data, limit, epochs, sweep, dump_embeddings, json } => {
                let options =
                    crate::bench::BenchOptions { data, limit, epochs, sweep, dump_embeddings };
                // The benchmark is synchronous and CPU-bound: keep it off the async workers.
                let config = config.load()?;
                tokio::task::spawn_blocking(move || bench::run(config, &options, json)).await?
            }
            Command::Report { runs, out } => report::run(&runs, &out),
            Command::Watch { run } => crate::tui::run_watch(run).await,
        }
    })
}

/// candle 0.11 splits every elementwise op over 64K elements across a pool of threads that
/// spin while they wait. On a 2-core machine shared with the dashboard (or anything else)
/// the spinning costs more than the split saves: head training ran 2-3x slower with it
/// (docs/benchmarks.md). Matmuls keep their own rayon parallelism, and the text encoder
/// runs whole batches in parallel. Must run before the first tensor op, while the process
/// is still single-threaded; an explicit `CANDLE_NUM_THREADS` wins.
///
/// `RAYON_NUM_THREADS` is pinned too: unset, candle recounts the physical cores (parsing
/// `/proc/cpuinfo`) before every matmul, which showed up in head-training profiles.
fn configure_threads() {
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        let threads = candle_core::utils::get_num_threads();
        std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
    }
}
