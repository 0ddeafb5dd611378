//! `memescope sweep`: plans the runs (src/plan), prints one command per run, then runs them
//! here or writes them for a scheduler (src/sweep).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context, Result};

use super::ConfigArgs;
use crate::plan::{data_has_reasoning, GridAxis, Plan};
use crate::sweep::{emit, local, TrainCommand};

/// Which runs: the builders of the plan, applied in this order.
pub struct SweepSpec {
    pub grid: Vec<String>,
    pub seeds: usize,
    pub leave_one_out: bool,
}

pub enum Emit {
    Local,
    Slurm(PathBuf),
    Commands(PathBuf),
}

impl Emit {
    /// From `--emit KIND PATH` (empty: run here).
    pub fn parse(values: &[String]) -> Result<Self> {
        Ok(match values {
            [] => Emit::Local,
            [kind, path] if kind == "slurm" => Emit::Slurm(path.into()),
            [kind, path] if kind == "commands" => Emit::Commands(path.into()),
            [kind, _] => bail!("--emit takes `slurm DIR` or `commands FILE`, not `{kind}`"),
            _ => bail!("--emit takes two values: `slurm DIR` or `commands FILE`"),
        })
    }
}

pub async fn run(args: &ConfigArgs, spec: &SweepSpec, emit: Emit) -> Result<()> {
    let base = args.load()?;
    let axes: Vec<GridAxis> =
        spec.grid.iter().map(|g| GridAxis::parse(g)).collect::<Result<_>>()?;
    let mut plan = Plan::base(base.clone()).with_grid(&axes)?;
    if spec.leave_one_out {
        plan = plan.with_leave_one_out(data_has_reasoning(&base));
    }
    let plan = plan.with_seeds(spec.seeds)?;

    let exe = std::env::current_exe().context("finding the memescope binary")?;
    let dir = std::env::current_dir().context("reading the current directory")?;
    let config = std::fs::canonicalize(&args.config)
        .with_context(|| format!("resolving {}", args.config.display()))?;
    let shared = args.assignments()?;
    let runs: Vec<(String, TrainCommand)> = plan
        .runs
        .iter()
        .map(|run| {
            let assignments: Vec<_> = shared.iter().chain(&run.assignments).cloned().collect();
            (run.label.clone(), TrainCommand::new(&exe, &dir, &config, &assignments))
        })
        .collect();
    let commands: Vec<TrainCommand> = runs.iter().map(|(_, command)| command.clone()).collect();
    let runs_folder = dir.join(&base.paths.runs);

    eprintln!("{} run(s), each in its own directory under {}:", runs.len(), runs_folder.display());
    print!("{}", emit::commands_text(&commands));
    match emit {
        Emit::Slurm(out) => {
            let script = emit::write_slurm(&out, &commands, &runs_folder)?;
            eprintln!("wrote {} (submit with `sbatch {}`)", script.display(), script.display());
            Ok(())
        }
        Emit::Commands(file) => {
            emit::write_commands(&file, &commands)?;
            eprintln!("wrote {}", file.display());
            Ok(())
        }
        Emit::Local => {
            // Ctrl-C reaches the running child too, which stops at its next step; the
            // sweep then starts no further run.
            let stop = Arc::new(AtomicBool::new(false));
            let flag = stop.clone();
            tokio::spawn(async move {
                if tokio::signal::ctrl_c().await.is_ok() {
                    flag.store(true, Ordering::SeqCst);
                }
            });
            let outcomes =
                tokio::task::spawn_blocking(move || local::run_all(&runs, &stop)).await?;
            print!("\n{}", local::summary_table(&outcomes));
            let failed = outcomes.iter().filter(|o| o.failed()).count();
            if failed > 0 {
                bail!("{failed} of {} run(s) did not finish", outcomes.len());
            }
            Ok(())
        }
    }
}
