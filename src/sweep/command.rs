//! One planned run as a command line that works from any shell on any machine that sees
//! the same paths: it changes to the directory the config's relative paths are read from,
//! and names the binary and the config by absolute path.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::config::Assignment;

#[derive(Debug, Clone, PartialEq)]
pub struct TrainCommand {
    /// The memescope binary.
    pub exe: PathBuf,
    /// Where relative paths of the config (data, runs folder, cache) are resolved.
    pub dir: PathBuf,
    /// The arguments after the binary: `train --headless --config … --set …`.
    pub args: Vec<String>,
}

impl TrainCommand {
    /// `config` trained with `assignments` (the sweep's own `--set`s, then the run's).
    pub fn new(exe: &Path, dir: &Path, config: &Path, assignments: &[Assignment]) -> Self {
        let mut args: Vec<String> = ["train", "--headless", "--config"].map(String::from).into();
        args.push(config.display().to_string());
        for assignment in assignments {
            args.push("--set".to_string());
            args.push(assignment.to_string());
        }
        Self { exe: exe.to_path_buf(), dir: dir.to_path_buf(), args }
    }

    /// One line for `bash -c`: `cd DIR && EXE train --headless …`, every word quoted for
    /// the shell where it needs to be.
    pub fn shell_line(&self) -> String {
        let words = std::iter::once(self.exe.display().to_string())
            .chain(self.args.iter().cloned())
            .map(|word| shell_quote(&word))
            .collect::<Vec<_>>()
            .join(" ");
        format!("cd {} && {words}", shell_quote(&self.dir.display().to_string()))
    }

    /// The same command as a child process (no shell in between).
    pub fn process(&self) -> Command {
        let mut command = Command::new(&self.exe);
        command.args(&self.args).current_dir(&self.dir);
        command
    }
}

/// `word` as one shell word: unchanged when it holds only characters no shell treats
/// specially, else in single quotes (a `'` inside becomes `'\''`).
pub fn shell_quote(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-./=:,+@%".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_quoted_only_when_needed() {
        assert_eq!(shell_quote("train.lr=0.001"), "train.lr=0.001");
        assert_eq!(shell_quote(r#"data.ocr="all""#), r#"'data.ocr="all"'"#);
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("$HOME"), "'$HOME'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn the_line_changes_directory_and_sets_toml_quoted_values() {
        let assignments = [
            Assignment::new("train.lr", 0.001),
            Assignment::new("text_encoder.model", "my models/it's"),
            Assignment::new("ablation.moe", false),
        ];
        let command = TrainCommand::new(
            Path::new("/opt/bin/memescope"),
            Path::new("/home/me/study dir"),
            Path::new("/home/me/study dir/base.toml"),
            &assignments,
        );
        assert_eq!(
            command.shell_line(),
            r#"cd '/home/me/study dir' && /opt/bin/memescope train --headless --config '/home/me/study dir/base.toml' --set train.lr=0.001 --set 'text_encoder.model="my models/it'\''s"' --set ablation.moe=false"#
        );
        let output = std::process::Command::new("bash")
            .args([
                "-c",
                &format!("printf '%s\\n' {}", command.shell_line().split_once(" && ").unwrap().1),
            ])
            .output()
            .unwrap();
        let words: Vec<String> =
            String::from_utf8(output.stdout).unwrap().lines().map(String::from).collect();
        let mut expected = vec![command.exe.display().to_string()];
        expected.extend(command.args.iter().cloned());
        assert_eq!(words, expected, "bash reads back the same words");
        assert_eq!(command.args[7], r#"text_encoder.model="my models/it's""#);
    }
}
