//! Writing a sweep for a scheduler: a commands file (one run per line, for GNU parallel or
//! a Kubernetes indexed Job) and a Slurm job-array script that runs one line of it per
//! array task.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::{shell_quote, TrainCommand};

/// Where `--emit slurm DIR` puts its files.
pub const SLURM_SCRIPT: &str = "sweep.sbatch";
pub const COMMANDS: &str = "commands.txt";

/// One command line per run, in plan order; line `i + 1` is run `i`.
pub fn commands_text(commands: &[TrainCommand]) -> String {
    commands.iter().map(|command| command.shell_line() + "\n").collect()
}

/// A job array of `count` tasks; task `i` runs line `i + 1` of `commands`. `runs` (the
/// shared runs folder) is named for the reader only.
pub fn slurm_script(commands: &Path, count: usize, runs: &Path) -> String {
    let commands_word = shell_quote(&commands.display().to_string());
    let log_dir = commands.parent().unwrap_or(Path::new("."));
    format!(
        r#"#!/bin/bash
# A memescope sweep of {count} runs as a Slurm job array: array task i runs line i+1 of
# {commands}
# Submit with: sbatch {script}
# Add what your cluster needs (--partition, --gres=gpu:1, --time, --mem, --cpus-per-task)
# as more #SBATCH lines next to these; Slurm reads them only before the first command.
#SBATCH --job-name=memescope-sweep
#SBATCH --array=0-{last}
#SBATCH --output={logs}/slurm-%A_%a.out
#
# Every run writes its own directory under {runs}, which must be a folder all nodes
# share: follow it with the dashboard's Runs pane or `memescope watch <run dir>`.
set -euo pipefail
line=$(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" {commands_word})
if [ -z "$line" ]; then
  echo "no line $((SLURM_ARRAY_TASK_ID + 1)) in {commands}" >&2
  exit 1
fi
exec bash -c "$line"
"#,
        commands = commands.display(),
        script = log_dir.join(SLURM_SCRIPT).display(),
        last = count.saturating_sub(1),
        logs = log_dir.display(),
        runs = runs.display(),
    )
}

/// Writes `commands.txt` and `sweep.sbatch` into `dir` (created if missing); returns the
/// script's path.
pub fn write_slurm(dir: &Path, commands: &[TrainCommand], runs: &Path) -> Result<PathBuf> {
    if dir.display().to_string().chars().any(char::is_whitespace) {
        bail!("--emit slurm: {} holds whitespace, which #SBATCH lines cannot quote", dir.display());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let dir = std::path::absolute(dir).with_context(|| format!("resolving {}", dir.display()))?;
    let list = dir.join(COMMANDS);
    write_commands(&list, commands)?;
    let script = dir.join(SLURM_SCRIPT);
    std::fs::write(&script, slurm_script(&list, commands.len(), runs))
        .with_context(|| format!("writing {}", script.display()))?;
    Ok(script)
}

pub fn write_commands(file: &Path, commands: &[TrainCommand]) -> Result<()> {
    std::fs::write(file, commands_text(commands))
        .with_context(|| format!("writing {}", file.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commands(n: usize) -> Vec<TrainCommand> {
        (0..n)
            .map(|i| {
                let set = crate::config::Assignment::new("train.seed", i as i64);
                TrainCommand::new(
                    Path::new("/bin/memescope"),
                    Path::new("/s"),
                    Path::new("/s/c.toml"),
                    &[set],
                )
            })
            .collect()
    }

    /// The script parses, and each array task runs its own line of the list.
    #[test]
    fn each_array_task_runs_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let script = write_slurm(dir.path(), &commands(3), Path::new("/s/runs")).unwrap();
        let text = std::fs::read_to_string(&script).unwrap();
        assert!(text.contains("\n#SBATCH --array=0-2\n"), "{text}");
        let syntax = std::process::Command::new("bash").arg("-n").arg(&script).status().unwrap();
        assert!(syntax.success());

        // Replace the command list by lines that just say which run they are.
        let list = dir.path().join(COMMANDS);
        std::fs::write(&list, "echo run 0\necho run 1\necho run 2\n").unwrap();
        for task in ["0", "2"] {
            let out = std::process::Command::new("bash")
                .arg(&script)
                .env("SLURM_ARRAY_TASK_ID", task)
                .output()
                .unwrap();
            assert_eq!(String::from_utf8(out.stdout).unwrap(), format!("run {task}\n"));
        }
        let past = std::process::Command::new("bash")
            .arg(&script)
            .env("SLURM_ARRAY_TASK_ID", "3")
            .output()
            .unwrap();
        assert!(!past.status.success(), "a task past the list fails loudly");
    }
}
