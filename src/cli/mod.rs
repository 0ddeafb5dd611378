//! The command line: each subcommand is a thin layer over the library.

mod bench;
mod cache;
mod cv;
mod ensemble;
mod eval;
mod predict;
mod progress;
mod report;
mod sweep;
mod train;

use std::io::IsTerminal;
use std::path::PathBuf;

use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};

use crate::config::Config;
use crate::ocr::OcrPolicy;
use crate::train::{ResumeFrom, ResumeOptions};

/// Train, compare and dissect multimodal classifiers of mental-health memes.
#[derive(Debug, Parser)]
#[command(name = "memescope", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Log more to stderr (info; -vv debug). Each run's run.log keeps info and above anyway.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Log only errors to stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Open the dashboard and train from it (the default command).
    Tui(ConfigArgs),
    /// Train a model; prints the run directory.
    #[command(after_help = EXIT_STATUS)]
    Train {
        #[command(flatten)]
        config: ConfigArgs,
        /// Plain progress lines instead of the dashboard (implied when stdout is not a
        /// terminal, and with --resume).
        #[arg(long)]
        headless: bool,
        /// Continue a run, with its own config, from its last completed epoch: it ends as
        /// it would have uninterrupted. With `--set train.epochs=N` it also extends a
        /// finished run; no other setting can change.
        #[arg(long, value_name = "RUN_DIR", conflicts_with_all = ["config", "ocr"])]
        resume: Option<PathBuf>,
        /// The checkpoint to resume from: `best` goes back to the best epoch when the last
        /// checkpoint is damaged (the epochs after it are trained again).
        #[arg(long, value_enum, value_name = "CHECKPOINT", requires = "resume", default_value_t)]
        resume_from: ResumeFrom,
    },
    /// Evaluate a trained run on a labelled file; prints a JSON report. Several `--run`s
    /// are scored as one ensemble (their probabilities averaged; e.g. a MiniLM run and an
    /// MPNet run).
    Eval {
        #[arg(long = "run", value_name = "RUN_DIR", required = true)]
        runs: Vec<PathBuf>,
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
    /// image's text by OCR and prints every label's probability. Several `--run`s label them
    /// as one ensemble (their probabilities averaged).
    Predict {
        #[arg(long = "run", value_name = "RUN_DIR", required = true)]
        runs: Vec<PathBuf>,
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
    #[command(after_help = EXIT_STATUS)]
    Cv {
        #[command(flatten)]
        config: ConfigArgs,
        #[arg(long, default_value_t = 5)]
        folds: usize,
        /// Seed of the fold assignment (default: data.split_seed).
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Average several cross-validations (`memescope cv` directories over the same data,
    /// folds and seed; e.g. one setup on MiniLM and one on MPNet) fold by fold, from the
    /// held-out predictions each fold kept, and score the averages: an ensemble's CV
    /// without training again. Given run directories instead, scores their averaged
    /// validation predictions (runs validated on the same samples).
    Ensemble {
        /// Two or more `cv-*` directories, or two or more run directories.
        #[arg(required = true, num_args = 2.., value_name = "DIR")]
        dirs: Vec<PathBuf>,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
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
        /// Instead of the benchmark: write one fine-tuning epoch's initial weights, batches
        /// and settings for the config's data into DIR, run that epoch (dropout 0) and
        /// report its time and losses, for scripts/bench_finetune_pytorch.py to compare.
        #[arg(long, value_name = "DIR", conflicts_with_all = ["data", "sweep", "dump_embeddings"])]
        finetune_export: Option<PathBuf>,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
        /// Where to run: cpu, cuda, cuda:N or auto (sets `train.device`; `cuda` needs a
        /// build with `--features cuda`).
        #[arg(long, value_name = "DEVICE")]
        device: Option<String>,
    },
    /// Plan a sweep (a grid over config keys, seeds, the leave-one-out ablations) as one
    /// `memescope train --headless` command per run; run them here one after another, or
    /// write them for a scheduler with --emit.
    Sweep {
        #[command(flatten)]
        config: ConfigArgs,
        /// Every combination of these values, each set like --set, e.g.
        /// `--grid train.lr=1e-3,3e-4` (repeatable: the grid is their product).
        #[arg(long, value_name = "SECTION.KEY=V1,V2,…")]
        grid: Vec<String>,
        /// Repeat every run with train.seed = the config's seed, seed + 1, …
        #[arg(long, value_name = "N", default_value_t = 1)]
        seeds: usize,
        /// Cross every run with the leave-one-out ablation sweep.
        #[arg(long)]
        leave_one_out: bool,
        /// Instead of running: `slurm DIR` writes DIR/sweep.sbatch (a job array) and
        /// DIR/commands.txt; `commands FILE` writes one command per line.
        #[arg(long, num_args = 2, value_names = ["slurm|commands", "PATH"])]
        emit: Vec<String>,
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

/// How `train` and `cv` tell scripts what happened (README, "Exit status").
const EXIT_STATUS: &str = "\
Exit status:
  0    the run completed (all its epochs, or early stopping)
  1    the run failed (a loss that is not finite, bad data, a damaged checkpoint)
  2    the command line is invalid
  130  stopped by SIGINT (Ctrl-C) at a step boundary; the run directory is consistent
       and `memescope train --resume RUN_DIR` continues it
  143  stopped by SIGTERM (kill, Slurm, Kubernetes, systemd) likewise
A second SIGINT or SIGTERM ends the process at once, with the same code.";

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
    /// The `--set`s and `--ocr` as assignments, in the order `load` applies them.
    pub fn assignments(&self) -> Result<Vec<crate::config::Assignment>> {
        let mut assignments: Vec<_> = self
            .overrides
            .iter()
            .map(|text| crate::config::Assignment::parse(text))
            .collect::<Result<_>>()?;
        if let Some(policy) = self.ocr {
            let value = toml::Value::try_from(policy).expect("a policy is a string");
            assignments.push(crate::config::Assignment::new("data.ocr", value));
        }
        Ok(assignments)
    }

    pub fn load(&self) -> Result<Config> {
        // The default config outside a checkout: the demo the binary carries.
        let path = if self.config.as_path() == std::path::Path::new(crate::demo::CONFIG) {
            crate::demo::config_path()?
        } else {
            self.config.clone()
        };
        let mut config = Config::load(&path, &self.overrides)?;
        if let Some(policy) = self.ocr {
            config.data.ocr = policy;
        }
        Ok(config)
    }

    /// The `--set`s of a resume: only `train.epochs=N`, which extends the run. Any other
    /// change would make the resumed run a different run than the one it continues.
    fn resume_options(&self, from: ResumeFrom) -> Result<ResumeOptions> {
        let mut options = ResumeOptions { from, epochs: None };
        for assignment in &self.overrides {
            let epochs = match assignment.split_once('=') {
                Some((key, value)) if key.trim() == "train.epochs" => value.trim(),
                _ => bail!(
                    "--set {assignment} cannot be used with --resume: a resumed run keeps the \
                     config it trained with (its config.toml), so that it continues the same \
                     run. Only --set train.epochs=N, to extend it, is allowed; start a new run \
                     to change anything else"
                ),
            };
            let epochs = epochs
                .parse()
                .with_context(|| format!("--set {assignment}: epochs must be a whole number"))?;
            options.epochs = Some(epochs);
        }
        Ok(options)
    }
}

/// Runs the command; see [`EXIT_STATUS`] for what the exit code says.
pub fn main() -> Result<ExitCode> {
    configure_allocator();
    configure_threads();
    let cli = Cli::parse();
    crate::logging::init(crate::logging::console_level(cli.verbose, cli.quiet));
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let command = cli.command.unwrap_or_else(|| {
        Command::Tui(ConfigArgs {
            config: crate::demo::CONFIG.into(),
            overrides: Vec::new(),
            ocr: None,
        })
    });
    runtime.block_on(async move {
        match command {
            Command::Tui(args) => {
                let config = args.load()?;
                let runs = config.paths.runs.clone();
                dashboard_exit(crate::tui::run_live(config, runs).await?)
            }
            Command::Train { config, headless, resume, .. }
                if !headless && resume.is_none() && std::io::stdout().is_terminal() =>
            {
                let config = config.load()?;
                let runs = config.paths.runs.clone();
                dashboard_exit(crate::tui::train_live(config, runs).await?)
            }
            Command::Train { config, resume, resume_from, .. } => {
                let job = match resume {
                    Some(dir) => train::Job::Resume(dir, config.resume_options(resume_from)?),
                    None => train::Job::Fresh(Box::new(config.load()?)),
                };
                train::run(job).await
            }
            Command::Eval { runs, data, images, predictions } => {
                done(eval::run(&runs, &data, images.as_deref(), predictions.as_deref()))
            }
            Command::Predict { runs, images, json } => done(predict::run(&runs, &images, json)),
            Command::Cache(args) => done(cache::run(&args.load()?)),
            Command::Cv { config, folds, seed } => cv::run(config.load()?, folds, seed).await,
            Command::Ensemble { dirs, json } => done(ensemble::run(&dirs, json)),
            Command::Bench {
                config,
                data,
                limit,
                epochs,
                sweep,
                dump_embeddings,
                finetune_export,
                json,
                device,
            } => {
                let options =
                    crate::bench::BenchOptions { data, limit, epochs, sweep, dump_embeddings };
                // `--device` is one more override, checked with the others (bf16 needs CUDA).
                let mut config = config;
                if let Some(device) = device {
                    let device = crate::config::Assignment::new("train.device", device);
                    config.overrides.push(device.to_string());
                }
                let config = config.load()?;
                // The benchmark is synchronous and CPU-bound: keep it off the async workers.
                let job = move || match finetune_export {
                    Some(dir) => bench::finetune(config, &dir, limit, json),
                    None => bench::run(config, &options, json),
                };
                done(tokio::task::spawn_blocking(job).await?)
            }
            Command::Sweep { config, grid, seeds, leave_one_out, emit } => {
                let emit = sweep::Emit::parse(&emit)?;
                let spec = sweep::SweepSpec { grid, seeds, leave_one_out };
                done(sweep::run(&config, &spec, emit).await)
            }
            Command::Report { runs, out } => done(report::run(&runs, &out)),
            Command::Watch { run } => dashboard_exit(crate::tui::run_watch(run).await?),
        }
    })
}

fn done(outcome: Result<()>) -> Result<ExitCode> {
    outcome.map(|()| ExitCode::SUCCESS)
}

/// A dashboard closed by SIGINT or SIGTERM (its run stopped first) exits as the signal
/// would; one the user quit exits 0.
fn dashboard_exit(signal: Option<crate::signals::StopSignal>) -> Result<ExitCode> {
    Ok(signal.map_or(ExitCode::SUCCESS, |s| s.exit_code()))
}

/// Keeps freed memory in the process for the next allocation instead of handing it back
/// to the kernel. A training step allocates and frees hundreds of megabytes of
/// short-lived tensors (candle allocates every result, and every gradient as zeros plus
/// an add); with glibc's defaults many of those came from fresh `mmap`s or from heaps trimmed
/// after each free, so each step paid a page fault per 4 KiB touched. On the fine-tuned
/// AxiOM epoch (docs/benchmarks.md): page faults 3.92 M → 0.44 M, system time 9.2 s →
/// 1.9 s, CPU time −17 %, peak memory no higher. One arena: training allocates on one
/// thread at a time, and per-thread arenas (each trimmed on its own) were where most of
/// the faults came from. Glibc only; must run before the threads start.
fn configure_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called at start-up, before any other
    // thread exists. A refused setting (return value 0) leaves glibc's default.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        // Allocations below 32 MiB (glibc's largest threshold) come from the heap, and free
        // heap is returned only beyond 2 GiB.
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
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
