//! `provenance.json`: what produced a run. One session per process that trained it (the
//! first run, then each `--resume`), and the encoders it used.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    pub sessions: Vec<Session>,
    /// The encoders whose features the run trained on, as resolved by its last session.
    #[serde(default)]
    pub models: Vec<ModelProvenance>,
}

/// One process that trained the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// memescope's version (`Cargo.toml`).
    pub version: String,
    /// The commit the binary was built from, when it was built from a git checkout.
    pub git_commit: Option<String>,
    /// The process's command line, program name first.
    pub command_line: Vec<String>,
    pub host: Option<String>,
    /// Wall-clock start and end, RFC 3339 in local time with its offset; `ended` stays
    /// `None` while the session runs (or if the process was killed).
    pub started: String,
    pub ended: Option<String>,
}

/// An encoder as the run used it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelProvenance {
    /// `text` or `vision`.
    pub role: String,
    /// The folder or hub id of the config.
    pub spec: String,
    /// The hash of its files, the one feature cache keys use.
    pub fingerprint: String,
    /// The hub commit its files came from, when they came from the hub.
    pub hub_revision: Option<String>,
}

impl Provenance {
    /// The session in progress: the last one.
    pub fn current(&mut self) -> Option<&mut Session> {
        self.sessions.last_mut()
    }
}
