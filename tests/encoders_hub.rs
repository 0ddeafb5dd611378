//! Hub resolution through hf-hub's real HTTP client, against a local stand-in for
//! huggingface.co (`HF_ENDPOINT` pointed at 127.0.0.1), so that refusals, missing files and
//! downloads of the older tokenizer files are exercised offline.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use memescope::encoders::{
    resolve_model_reporting, resolve_model_with, Download, HubSettings, TokenizerFiles,
};
use memescope::testing::{tiny_roberta_tokenizer, write_slow_tokenizer, write_tiny_roberta};

/// Serves `/<owner>/<name>/resolve/main/<file>` the way the hub does for hf-hub: ranged
/// responses with the `etag` and `x-repo-commit` headers; `refuse` answers every request
/// with that status instead; files it lacks get 404. Requests are recorded.
struct FakeHub {
    endpoint: String,
    requested: Arc<Mutex<Vec<String>>>,
}

impl FakeHub {
    fn start(files: HashMap<String, Vec<u8>>, refuse: Option<u16>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let requested = Arc::new(Mutex::new(Vec::new()));
        let log = requested.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = serve(stream, &files, refuse, &log);
            }
        });
        Self { endpoint, requested }
    }

    fn settings(&self, cache: &Path) -> HubSettings {
        HubSettings {
            offline: false,
            cache_dir: cache.to_path_buf(),
            token: None,
            endpoint: Some(self.endpoint.clone()),
        }
    }

    /// The file names requested, each once, in first-request order.
    fn requested(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for name in self.requested.lock().unwrap().iter() {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
        names
    }
}

fn serve(
    stream: TcpStream,
    files: &HashMap<String, Vec<u8>>,
    refuse: Option<u16>,
    log: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut range_start = 0usize;
    let mut range_end = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some(range) = header.to_ascii_lowercase().strip_prefix("range: bytes=") {
            let (start, end) = range.trim().split_once('-').unwrap_or(("0", ""));
            range_start = start.parse().unwrap_or(0);
            range_end = end.parse::<usize>().ok();
        }
    }
    let path = request_line.split_whitespace().nth(1).unwrap_or("");
    let name = path.rsplit("/resolve/main/").next().unwrap_or("").to_string();
    log.lock().unwrap().push(name.clone());
    let mut out = stream;
    let reply = |out: &mut TcpStream, status: &str, headers: &str, body: &[u8]| {
        let head = format!(
            "HTTP/1.1 {status}\r\n{headers}content-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        out.write_all(head.as_bytes())?;
        out.write_all(body)
    };
    match (refuse, files.get(&name)) {
        (Some(code), _) => reply(&mut out, &format!("{code} Refused"), "", b"Access restricted"),
        (None, None) => reply(&mut out, "404 Not Found", "x-error-code: EntryNotFound\r\n", b""),
        (None, Some(body)) => {
            let end = range_end.unwrap_or(body.len() - 1).min(body.len() - 1);
            let etag: u64 = body
                .iter()
                .fold(1469598103934665603, |h, b| (h ^ u64::from(*b)).wrapping_mul(1099511628211));
            let headers = format!(
                "etag: \"{etag:016x}\"\r\nx-repo-commit: {}\r\ncontent-range: bytes \
                 {range_start}-{end}/{}\r\n",
                "c0ffee".repeat(6) + "c0ff",
                body.len()
            );
            reply(&mut out, "206 Partial Content", &headers, &body[range_start..=end])
        }
    }
}

fn folder_files(dir: &Path) -> HashMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&path).unwrap(),
            )
        })
        .collect()
}

#[test]
fn refusals_say_the_model_is_gated_and_how_to_get_access() -> Result<()> {
    for status in [401, 403] {
        let hub = FakeHub::start(HashMap::new(), Some(status));
        let cache = tempfile::tempdir()?;
        let err =
            resolve_model_with("mental/mental-roberta-base", true, &hub.settings(cache.path()))
                .unwrap_err()
                .to_string();
        for needle in [
            "gated",
            "request access at https://huggingface.co/mental/mental-roberta-base",
            "HF_TOKEN",
            &format!("status code {status}"),
        ] {
            assert!(err.contains(needle), "{status}: missing `{needle}` in: {err}");
        }
    }
    Ok(())
}

#[test]
fn a_repository_without_the_files_is_reported_as_such() -> Result<()> {
    let hub = FakeHub::start(HashMap::new(), None);
    let cache = tempfile::tempdir()?;
    let err = resolve_model_with("owner/empty", true, &hub.settings(cache.path()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("`owner/empty` on the hub has no config.json"), "{err}");
    Ok(())
}

/// A hub repository with vocab.json + merges.txt and no tokenizer.json: they are downloaded
/// (tokenizer.json is asked for first), cached, and give the fixture's tokenizer ids; the
/// same files are then found offline.
#[test]
fn the_older_tokenizer_files_are_downloaded_when_tokenizer_json_is_absent() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let folder = dir.path().join("repo");
    write_tiny_roberta(&folder)?;
    std::fs::remove_file(folder.join("tokenizer.json"))?;
    let reference = tiny_roberta_tokenizer()?;
    write_slow_tokenizer(&reference, &folder)?;
    let hub = FakeHub::start(folder_files(&folder), None);
    let cache = dir.path().join("cache");

    let files = resolve_model_with("owner/old-roberta", true, &hub.settings(&cache))?;
    let Some(TokenizerFiles::ByteLevelBpe { vocab, merges, settings }) = &files.tokenizer else {
        panic!("{:?}", files.tokenizer);
    };
    assert_eq!(std::fs::read(vocab)?, std::fs::read(folder.join("vocab.json"))?);
    assert_eq!(std::fs::read(merges)?, std::fs::read(folder.join("merges.txt"))?);
    assert_eq!(settings.tokenizer_config, None);
    assert!(settings.special_tokens_map.is_some());
    assert_eq!(
        hub.requested(),
        [
            "config.json",
            "tokenizer.json",
            "vocab.json",
            "merges.txt",
            "tokenizer_config.json",
            "special_tokens_map.json",
            "model.safetensors"
        ]
    );
    let tokenizer = files.tokenizer.as_ref().unwrap().load(&files.spec)?;
    let ids =
        |t: &tokenizers::Tokenizer| t.encode("the cat and me", true).unwrap().get_ids().to_vec();
    assert_eq!(ids(&tokenizer), ids(&reference));

    let offline = HubSettings { offline: true, ..hub.settings(&cache) };
    assert_eq!(resolve_model_with("owner/old-roberta", true, &offline)?, files);
    Ok(())
}

/// Downloads report their progress to the caller (for the status line), from the first to
/// the last byte of each file; files already in the cache are not downloaded again.
#[test]
fn downloads_report_progress_to_the_caller_and_cached_files_none() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let folder = dir.path().join("repo");
    write_tiny_roberta(&folder)?;
    let served = folder_files(&folder);
    let hub = FakeHub::start(served.clone(), None);
    let cache = dir.path().join("cache");
    let mut reports: Vec<Download> = Vec::new();
    let files =
        resolve_model_reporting("owner/tiny", true, &hub.settings(&cache), &mut |d: &Download| {
            reports.push(d.clone())
        })?;
    let weights = served["model.safetensors"].len();
    let finished: Vec<&Download> = reports
        .iter()
        .filter(|d| d.file == "owner/tiny/model.safetensors" && d.done_bytes == d.total_bytes)
        .collect();
    assert!(!finished.is_empty(), "{reports:?}");
    assert_eq!(finished[0].total_bytes, weights);
    assert!(reports.iter().any(|d| d.file.ends_with("config.json") && d.done_bytes == 0));
    assert!(reports.iter().all(|d| d.done_bytes <= d.total_bytes), "{reports:?}");

    let mut again = 0;
    let cached =
        resolve_model_reporting("owner/tiny", true, &hub.settings(&cache), &mut |_| again += 1)?;
    assert_eq!((cached, again), (files, 0));
    Ok(())
}
