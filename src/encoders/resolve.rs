//! Finding model files: a local folder, or a hub id through hf-hub's standard cache.
//!
//! Rules:
//! - an existing folder is used as is; it must hold `config.json`, the weights
//!   (`model.safetensors`, else `pytorch_model.bin`) and, for text encoders, a tokenizer:
//!   `tokenizer.json`, else the older `vocab.json` + `merges.txt` or `vocab.txt` (with
//!   `tokenizer_config.json` and `special_tokens_map.json` when present; see
//!   [`super::tokenizer`]);
//! - a spec that can only be a path (absolute, `./`, `../`, `~`, or more than one `/`)
//!   but does not exist is an error;
//! - anything else is a Hugging Face hub id (`owner/name`), fetched through hf-hub into
//!   its cache (`HF_HOME`, token from `HF_TOKEN` or `$HF_HOME/token`); with
//!   `HF_HUB_OFFLINE=1` only the cache is consulted.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Instant, SystemTime};

use anyhow::{bail, Context, Result};
use hf_hub::api::sync::{ApiBuilder, ApiRepo};
use hf_hub::api::Progress;
use hf_hub::{Cache, CacheRepo, Repo};
use sha2::{Digest, Sha256};

use super::tokenizer::{TokenizerFiles, TOKENIZER_FORMS};
use crate::cache::hash_file;

const CONFIG: &str = "config.json";
const WEIGHTS: [&str; 2] = ["model.safetensors", "pytorch_model.bin"];

/// The files of one Hugging Face-format checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelFiles {
    /// What the user asked for (folder or hub id), for messages.
    pub spec: String,
    pub config: PathBuf,
    /// The tokenizer's files; vision towers have none.
    pub tokenizer: Option<TokenizerFiles>,
    /// `model.safetensors` or `pytorch_model.bin`.
    pub weights: PathBuf,
}

impl ModelFiles {
    /// A short stable hash of the config, weights and tokenizer contents, used in cache keys.
    /// The same files give the same fingerprint wherever they live.
    pub fn fingerprint(&self) -> Result<String> {
        let mut hasher = Sha256::new();
        let tokenizer = self.tokenizer.iter().flat_map(TokenizerFiles::parts);
        for (role, path) in [("config", self.config.as_path()), ("weights", self.weights.as_path())]
            .into_iter()
            .chain(tokenizer)
        {
            hasher.update(format!("{role}={}\n", memoised_file_hash(path)?));
        }
        let digest = hasher.finalize();
        Ok(digest.iter().take(8).map(|b| format!("{b:02x}")).collect())
    }
}

/// Hashing a few hundred MB of weights takes a noticeable moment, and a session fingerprints
/// the same checkpoint for every cache lookup; files are re-hashed when their size or
/// modification time changes.
fn memoised_file_hash(path: &Path) -> Result<String> {
    type Stamp = (PathBuf, u64, Option<SystemTime>);
    static MEMO: Mutex<Option<HashMap<Stamp, String>>> = Mutex::new(None);
    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    let stamp = (path.to_path_buf(), meta.len(), meta.modified().ok());
    if let Some(hash) = MEMO.lock().ok().and_then(|memo| memo.as_ref()?.get(&stamp).cloned()) {
        return Ok(hash);
    }
    let hash = hash_file(path)?;
    if let Ok(mut memo) = MEMO.lock() {
        memo.get_or_insert_with(HashMap::new).insert(stamp, hash.clone());
    }
    Ok(hash)
}

/// Resolves a local folder or hub id into model files (see the module docs for rules),
/// with hub settings from the environment.
/// A download from the hub logs its start and end.
pub fn resolve_model(spec: &str, needs_tokenizer: bool) -> Result<ModelFiles> {
    resolve_model_with(spec, needs_tokenizer, &HubSettings::from_env())
}

/// [`resolve_model`] with explicit hub settings.
pub fn resolve_model_with(
    spec: &str,
    needs_tokenizer: bool,
    hub: &HubSettings,
) -> Result<ModelFiles> {
    resolve(spec, needs_tokenizer, hub, &mut log_download)
}

/// [`resolve_model`] that reports each download from the hub as it progresses (for a
/// status line: hf-hub's own progress bar would draw over the dashboard).
pub fn resolve_model_reporting(
    spec: &str,
    needs_tokenizer: bool,
    hub: &HubSettings,
    report: &mut dyn FnMut(&Download),
) -> Result<ModelFiles> {
    resolve(spec, needs_tokenizer, hub, report)
}

/// A file on its way from the hub.
#[derive(Debug, Clone, PartialEq)]
pub struct Download {
    /// `owner/name/file`.
    pub file: String,
    pub done_bytes: usize,
    pub total_bytes: usize,
    /// Seconds since it started.
    pub seconds: f64,
}

fn log_download(download: &Download) {
    if download.done_bytes == 0 || download.done_bytes == download.total_bytes {
        let state = if download.done_bytes == 0 { "downloading" } else { "downloaded" };
        tracing::info!("{state} {} ({} bytes)", download.file, download.total_bytes);
    }
}

fn resolve(
    spec: &str,
    needs_tokenizer: bool,
    hub: &HubSettings,
    report: &mut dyn FnMut(&Download),
) -> Result<ModelFiles> {
    let path = Path::new(spec);
    if path.exists() {
        return from_folder(spec, path, needs_tokenizer);
    }
    if looks_like_path(spec) {
        bail!("model folder {spec} does not exist. {}", how_to_fetch(spec));
    }
    if hub.offline {
        from_cache(spec, needs_tokenizer, hub)
    } else {
        from_hub(spec, needs_tokenizer, hub, report)
    }
}

/// Where and how the hub is reached, from the variables the Python tools also honour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubSettings {
    /// `HF_HUB_OFFLINE`: use only the cache.
    pub offline: bool,
    /// `HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`.
    pub cache_dir: PathBuf,
    /// `HF_TOKEN`; when absent hf-hub reads the token file next to the cache.
    pub token: Option<String>,
    /// `HF_ENDPOINT`, e.g. a mirror.
    pub endpoint: Option<String>,
}

impl HubSettings {
    pub fn from_env() -> Self {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// Reads the settings through `var` (a stand-in for the environment in tests).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Self {
        let set = |name: &str| var(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let offline = set("HF_HUB_OFFLINE").is_some_and(|v| {
            matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on")
        });
        let cache_dir = match (set("HF_HUB_CACHE"), set("HF_HOME")) {
            (Some(cache), _) => PathBuf::from(cache),
            (None, Some(home)) => PathBuf::from(home).join("hub"),
            (None, None) => Cache::default().path().clone(),
        };
        Self { offline, cache_dir, token: set("HF_TOKEN"), endpoint: set("HF_ENDPOINT") }
    }
}

/// What to run to get a missing model folder: the offline models have their fetch script;
/// any other model comes from the hub.
fn how_to_fetch(spec: &str) -> String {
    let name = Path::new(spec).file_name().map(|n| n.to_string_lossy().into_owned());
    let offline = |script: &str, folder: &str| {
        format!(
            "Fetch it with `./scripts/fetch-model.sh {script}` in a memescope checkout (it \
             unpacks the model into models/{folder}), or set the model to the hub id \
             `sentence-transformers/{folder}` to download it"
        )
    };
    match name.as_deref() {
        Some(folder @ "all-MiniLM-L6-v2") => offline("minilm", folder),
        Some(folder @ "all-mpnet-base-v2") => offline("mpnet", folder),
        Some(name) => format!(
            "Download the model's files (config.json, weights, tokenizer) into that folder, \
             or give its hub id (`owner/{name}`) instead to download it"
        ),
        None => "Give a model folder or a hub id".to_string(),
    }
}

fn looks_like_path(spec: &str) -> bool {
    spec.starts_with('/')
        || spec.starts_with('.')
        || spec.starts_with('~')
        || spec.contains('\\')
        || spec.matches('/').count() > 1
        || spec.is_empty()
}

fn from_folder(spec: &str, dir: &Path, needs_tokenizer: bool) -> Result<ModelFiles> {
    if !dir.is_dir() {
        bail!("model path {} is a file; expected a folder with {CONFIG} and weights", spec);
    }
    let config = dir.join(CONFIG);
    let weights = WEIGHTS.iter().map(|name| dir.join(name)).find(|p| p.is_file());
    let tokenizer = if needs_tokenizer {
        TokenizerFiles::find(|name| Ok(Some(dir.join(name)).filter(|p| p.is_file())))?
    } else {
        None
    };
    let mut missing = Vec::new();
    if !config.is_file() {
        missing.push(CONFIG.to_string());
    }
    if needs_tokenizer && tokenizer.is_none() {
        missing.push(TOKENIZER_FORMS.to_string());
    }
    if weights.is_none() {
        missing.push(WEIGHTS.join(" or "));
    }
    if !missing.is_empty() {
        bail!("model folder {} lacks {}", dir.display(), missing.join(", "));
    }
    Ok(ModelFiles {
        spec: spec.to_string(),
        config,
        tokenizer,
        weights: weights.expect("checked above"),
    })
}

fn from_cache(id: &str, needs_tokenizer: bool, hub: &HubSettings) -> Result<ModelFiles> {
    let cache = Cache::new(hub.cache_dir.clone());
    let repo = cache.repo(Repo::model(id.to_string()));
    let config = repo.get(CONFIG);
    let weights = WEIGHTS.iter().find_map(|name| repo.get(name));
    let tokenizer =
        if needs_tokenizer { TokenizerFiles::find(|name| Ok(repo.get(name)))? } else { None };
    let mut missing = Vec::new();
    if config.is_none() {
        missing.push(CONFIG.to_string());
    }
    if needs_tokenizer && tokenizer.is_none() {
        missing.push(TOKENIZER_FORMS.to_string());
    }
    if weights.is_none() {
        missing.push(format!("{} (or {})", WEIGHTS[0], WEIGHTS[1]));
    }
    match (config, weights) {
        (Some(config), Some(weights)) if missing.is_empty() => {
            Ok(ModelFiles { spec: id.to_string(), config, tokenizer, weights })
        }
        _ => bail!(
            "`{id}` is not (fully) in the Hugging Face cache {}: {} missing, and HF_HUB_OFFLINE \
             is set, so nothing is downloaded. Either unset HF_HUB_OFFLINE on a machine with \
             network access, or download {} from https://huggingface.co/{id} into a folder \
             (e.g. models/{name}) and give that folder's path instead of the hub id.",
            cache.path().display(),
            missing.join(", "),
            missing.join(", "),
            name = id.rsplit('/').next().unwrap_or(id)
        ),
    }
}

fn from_hub(
    id: &str,
    needs_tokenizer: bool,
    hub: &HubSettings,
    report: &mut dyn FnMut(&Download),
) -> Result<ModelFiles> {
    let mut builder =
        ApiBuilder::from_cache(Cache::new(hub.cache_dir.clone())).with_progress(false);
    if let Some(endpoint) = &hub.endpoint {
        builder = builder.with_endpoint(endpoint.clone());
    }
    if hub.token.is_some() {
        builder = builder.with_token(hub.token.clone());
    }
    let api = builder.build().map_err(|e| hub_error(id, "connecting to the hub", &e))?;
    let repo = api.model(id.to_string());
    let cached = Cache::new(hub.cache_dir.clone()).repo(Repo::model(id.to_string()));
    let mut fetch = |file: &str| fetch(&repo, &cached, id, file, &mut *report);
    let required = |fetch: &mut dyn FnMut(&str) -> Result<Option<PathBuf>>, file: &str| {
        fetch(file)?.with_context(|| format!("`{id}` on the hub has no {file}"))
    };
    let config = required(&mut fetch, CONFIG)?;
    // Only when tokenizer.json is absent are the older tokenizer files asked for.
    let tokenizer = if needs_tokenizer {
        let found = TokenizerFiles::find(&mut fetch)?;
        Some(found.with_context(|| format!("`{id}` on the hub has no {TOKENIZER_FORMS}"))?)
    } else {
        None
    };
    // Prefer safetensors; older repositories only have the PyTorch pickle.
    let weights = match fetch(WEIGHTS[0])? {
        Some(path) => path,
        None => fetch(WEIGHTS[1])?.with_context(|| {
            format!("`{id}` on the hub has neither {} nor {}", WEIGHTS[0], WEIGHTS[1])
        })?,
    };
    Ok(ModelFiles { spec: id.to_string(), config, tokenizer, weights })
}

/// Finds one file in the cache, or downloads it reporting progress; `None` when the
/// repository lacks it.
fn fetch(
    repo: &ApiRepo,
    cached: &CacheRepo,
    id: &str,
    file: &str,
    report: &mut dyn FnMut(&Download),
) -> Result<Option<PathBuf>> {
    if let Some(path) = cached.get(file) {
        return Ok(Some(path));
    }
    let progress = DownloadProgress {
        download: Download {
            file: format!("{id}/{file}"),
            done_bytes: 0,
            total_bytes: 0,
            seconds: 0.0,
        },
        started: Instant::now(),
        last_report: None,
        report,
    };
    match repo.download_with_progress(file, progress) {
        Ok(path) => Ok(Some(path)),
        Err(e) if http_status(&e.to_string()) == Some(404) => Ok(None),
        Err(e) => Err(hub_error(id, &format!("downloading {file}"), &e)),
    }
}

/// hf-hub's download progress, passed on as [`Download`]s at most ten times a second.
struct DownloadProgress<'a> {
    download: Download,
    started: Instant,
    last_report: Option<Instant>,
    report: &'a mut dyn FnMut(&Download),
}

impl DownloadProgress<'_> {
    fn send(&mut self, always: bool) {
        let due = self.last_report.is_none_or(|last| last.elapsed().as_millis() >= 100);
        if always || due {
            self.download.seconds = self.started.elapsed().as_secs_f64();
            (self.report)(&self.download);
            self.last_report = Some(Instant::now());
        }
    }
}

impl Progress for DownloadProgress<'_> {
    fn init(&mut self, size: usize, _filename: &str) {
        self.download.total_bytes = size;
        self.send(true);
    }

    fn update(&mut self, size: usize) {
        self.download.done_bytes += size;
        self.send(false);
    }

    fn finish(&mut self) {
        self.download.done_bytes = self.download.total_bytes;
        self.send(true);
    }
}

/// The HTTP status of a failed hub request. hf-hub 0.4's sync API wraps ureq's error as
/// `ApiError::RequestError(Box<ureq::Error>)` (also inside `TooManyRetries`), and a refused
/// request is `ureq::Error::Status(code, response)`, displayed as
/// `request error: <url>: status code <code>`. Naming that type would mean depending on ureq
/// ourselves, so the status is read from the text; `tests/encoders_hub.rs` checks it against
/// real hf-hub requests to a local server.
fn http_status(text: &str) -> Option<u16> {
    let rest = text.split("status code ").nth(1)?;
    rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

/// Turns an hf-hub error into advice.
fn hub_error(id: &str, action: &str, error: &dyn std::fmt::Display) -> anyhow::Error {
    let text = error.to_string();
    match http_status(&text) {
        // Without a token the hub also answers 401 for a repository that does not exist.
        Some(401) | Some(403) => anyhow::anyhow!(
            "{action} for `{id}` was refused ({text}). The model is probably gated: request \
             access at https://huggingface.co/{id} and set HF_TOKEN to an access token of the \
             account that was granted access (or log in with `huggingface-cli login`). If no \
             token was set, also check the id: the hub answers unknown ids the same way."
        ),
        Some(404) => anyhow::anyhow!(
            "{action} for `{id}`: not found ({text}). Check the hub id (or give a local folder \
             path); a private repository also answers 404 without a valid HF_TOKEN."
        ),
        _ => anyhow::anyhow!(
            "{action} for `{id}` failed: {text}. Check the network connection (or proxy \
             settings), or download the files from https://huggingface.co/{id} into a folder \
             and give its path instead; HF_HUB_OFFLINE=1 uses only already cached files."
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_errors_explain_gating_and_missing_files() {
        let url = "https://huggingface.co/mental/mental-roberta-base/resolve/main/config.json";
        let gated = hub_error(
            "mental/mental-roberta-base",
            "downloading config.json",
            &format!("{url}: status code 401"),
        )
        .to_string();
        assert!(gated.contains("gated"), "{gated}");
        assert!(gated.contains("https://huggingface.co/mental/mental-roberta-base"), "{gated}");
        assert!(gated.contains("HF_TOKEN"), "{gated}");
        let forbidden = hub_error("a/b", "x", &format!("{url}: status code 403")).to_string();
        assert!(forbidden.contains("gated"), "{forbidden}");
        let missing = hub_error("a/b", "x", &format!("{url}: status code 404")).to_string();
        assert!(missing.contains("not found"), "{missing}");
        let network = hub_error("a/b", "x", &"Dns Failed: resolve dns name").to_string();
        assert!(network.contains("network"), "{network}");
    }

    #[test]
    fn settings_follow_the_hugging_face_variables() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
        };
        let hub = HubSettings::from_vars(vars(&[("HF_HUB_OFFLINE", "1"), ("HF_HOME", "/h")]));
        assert!(hub.offline);
        assert_eq!(hub.cache_dir, PathBuf::from("/h/hub"));
        assert_eq!(hub.token, None);
        let hub = HubSettings::from_vars(vars(&[
            ("HF_HUB_OFFLINE", "0"),
            ("HF_HOME", "/h"),
            ("HF_HUB_CACHE", "/c"),
            ("HF_TOKEN", " hf_x "),
        ]));
        assert!(!hub.offline);
        assert_eq!(hub.cache_dir, PathBuf::from("/c"));
        assert_eq!(hub.token.as_deref(), Some("hf_x"));
        assert_eq!(http_status("https://x/y: status code 404"), Some(404));
        assert_eq!(http_status("Dns Failed"), None);
    }

    #[test]
    fn paths_and_hub_ids_are_told_apart() {
        for path in ["/abs/model", "./m", "../m", "~/m", "a/b/c", ".hidden", ""] {
            assert!(looks_like_path(path), "{path}");
        }
        for id in ["sentence-transformers/all-MiniLM-L6-v2", "bert-base-uncased"] {
            assert!(!looks_like_path(id), "{id}");
        }
    }

    #[test]
    fn a_folder_lists_every_missing_file() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let err = resolve_model(dir.path().to_str().unwrap(), true).unwrap_err().to_string();
        for file in ["config.json", "tokenizer.json", "model.safetensors or pytorch_model.bin"] {
            assert!(err.contains(file), "{err}");
        }
        std::fs::write(dir.path().join("config.json"), "{}")?;
        std::fs::write(dir.path().join("pytorch_model.bin"), "x")?;
        let files = resolve_model(dir.path().to_str().unwrap(), false)?;
        assert_eq!(files.weights, dir.path().join("pytorch_model.bin"));
        assert_eq!(files.tokenizer, None);
        let err = resolve_model(dir.path().to_str().unwrap(), true).unwrap_err().to_string();
        assert!(err.contains("tokenizer.json") && !err.contains("config.json"), "{err}");
        Ok(())
    }

    #[test]
    fn fingerprint_follows_content_not_location() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let write = |sub: &str, weights: &str| -> Result<ModelFiles> {
            let folder = dir.path().join(sub);
            std::fs::create_dir_all(&folder)?;
            std::fs::write(folder.join("config.json"), "{\"a\": 1}")?;
            std::fs::write(folder.join("model.safetensors"), weights)?;
            resolve_model(folder.to_str().unwrap(), false)
        };
        let first = write("one", "weights")?.fingerprint()?;
        assert_eq!(first.len(), 16);
        assert_eq!(first, write("two", "weights")?.fingerprint()?);
        assert_ne!(first, write("three", "other weights")?.fingerprint()?);
        Ok(())
    }
}
