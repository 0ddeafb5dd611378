//! Filling a run's `provenance.json` (format: `crate::runs::Provenance`) as it trains: the
//! session when it starts and ends, and the encoders once its features are prepared.

use std::path::{Component, Path};

use anyhow::Result;

use crate::config::Config;
use crate::encoders::{resolve_model, ModelFiles};
use crate::runs::{ModelProvenance, RunDir, Session};

/// The commit of the checkout this binary was built from (`build.rs`); `None` otherwise.
pub fn git_commit() -> Option<&'static str> {
    option_env!("MEMESCOPE_GIT_COMMIT").filter(|commit| !commit.is_empty())
}

fn now() -> String {
    chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
}

/// Adds this process as a new session of `run` (a resume adds one to those before it).
pub(crate) fn begin_session(run: &RunDir) -> Result<()> {
    let mut provenance = run.read_provenance()?;
    provenance.sessions.push(Session {
        version: env!("CARGO_PKG_VERSION").to_string(),
        git_commit: git_commit().map(str::to_string),
        command_line: std::env::args().collect(),
        host: host_name(),
        started: now(),
        ended: None,
    });
    run.write_provenance(&provenance)
}

/// Records the end of the current session. Provenance is a record, not the run: a failure
/// to write it is logged, never the run's failure.
pub(crate) fn end_session(run: &RunDir) {
    let ended = run.read_provenance().and_then(|mut provenance| {
        if let Some(session) = provenance.current() {
            session.ended = Some(now());
        }
        run.write_provenance(&provenance)
    });
    if let Err(error) = ended {
        tracing::warn!("recording the end of {}: {error:#}", run.id);
    }
}

/// Records the encoders `config` trained with; the vision encoder only when images were used.
pub(crate) fn record_models(run: &RunDir, config: &Config, used_images: bool) {
    let vision = config.vision_encoder.model.as_deref().filter(|_| used_images);
    let specs =
        [("text", Some(config.text_encoder.model.as_str()), true), ("vision", vision, false)];
    let recorded = specs
        .into_iter()
        .filter_map(|(role, spec, needs_tokenizer)| Some((role, spec?, needs_tokenizer)))
        .map(|(role, spec, needs_tokenizer)| {
            let files = resolve_model(spec, needs_tokenizer)?;
            Ok(ModelProvenance {
                role: role.to_string(),
                spec: spec.to_string(),
                fingerprint: files.fingerprint()?,
                hub_revision: hub_revision(&files),
            })
        })
        .collect::<Result<Vec<_>>>()
        .and_then(|models| {
            let mut provenance = run.read_provenance()?;
            provenance.models = models;
            run.write_provenance(&provenance)
        });
    if let Err(error) = recorded {
        tracing::warn!("recording the encoders of {}: {error:#}", run.id);
    }
}

/// The hub commit of files in hf-hub's cache, which keeps them under
/// `models--<owner>--<name>/snapshots/<commit>/`; `None` for a local folder.
fn hub_revision(files: &ModelFiles) -> Option<String> {
    let mut components = files.config.components();
    components.by_ref().find(|c| *c == Component::Normal("snapshots".as_ref()))?;
    match components.next()? {
        Component::Normal(commit) => Some(commit.to_string_lossy().into_owned()),
        _ => None,
    }
}

fn host_name() -> Option<String> {
    let from_kernel = std::fs::read_to_string(Path::new("/proc/sys/kernel/hostname")).ok();
    from_kernel
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn files_at(config: &str) -> ModelFiles {
        ModelFiles {
            spec: "x".into(),
            config: PathBuf::from(config),
            tokenizer: None,
            weights: PathBuf::from(config).with_file_name("model.safetensors"),
        }
    }

    #[test]
    fn hub_files_name_their_revision_and_local_folders_none() {
        let hub = files_at("/c/hub/models--o--n/snapshots/0123abcd/config.json");
        assert_eq!(hub_revision(&hub).as_deref(), Some("0123abcd"));
        assert_eq!(hub_revision(&files_at("models/minilm/config.json")), None);
    }

    #[test]
    fn sessions_accumulate_and_each_ends() {
        let root = tempfile::tempdir().unwrap();
        let run = RunDir::create(root.path(), &Default::default()).unwrap();
        begin_session(&run).unwrap();
        end_session(&run);
        begin_session(&run).unwrap();
        let provenance = run.read_provenance().unwrap();
        assert_eq!(provenance.sessions.len(), 2);
        let (first, second) = (&provenance.sessions[0], &provenance.sessions[1]);
        assert!(first.ended.is_some() && second.ended.is_none());
        assert_eq!(first.version, env!("CARGO_PKG_VERSION"));
        assert!(!first.command_line.is_empty());
        assert!(chrono::DateTime::parse_from_rfc3339(&first.started).is_ok(), "{first:?}");
    }
}
