//! Where `tracing` output goes: the one place that sets up logging.
//!
//! - The console: stderr for headless commands, at the level of the global `-v`/`-q` flags
//!   (warnings by default) or `MEMESCOPE_LOG` (an `EnvFilter`, e.g. `memescope=debug`). The
//!   dashboard owns the screen, so it sends the console to a file instead
//!   ([`console_to_file`]).
//! - Each run's own `run.log`: everything at info and above logged inside the run's span
//!   ([`run_span`]), whatever the console shows.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context as LayerContext, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// The span name [`RunLogLayer`] looks for; its `log` field is the file to write.
const RUN_SPAN: &str = "run";

/// Where the console layer writes: stderr until the dashboard takes the screen.
static CONSOLE: Mutex<Option<File>> = Mutex::new(None);

/// How much the console shows: `-q` errors only, default warnings, `-v` info, `-vv` debug,
/// `-vvv` trace.
pub fn console_level(verbose: u8, quiet: bool) -> LevelFilter {
    match (quiet, verbose) {
        (true, _) => LevelFilter::ERROR,
        (false, 0) => LevelFilter::WARN,
        (false, 1) => LevelFilter::INFO,
        (false, 2) => LevelFilter::DEBUG,
        (false, _) => LevelFilter::TRACE,
    }
}

/// Installs the process's subscriber: the console at `level` (unless `MEMESCOPE_LOG` says
/// otherwise) and every run's `run.log`. A second call keeps the first subscriber.
pub fn init(level: LevelFilter) {
    let console_filter = EnvFilter::try_from_env("MEMESCOPE_LOG")
        .unwrap_or_else(|_| EnvFilter::new(level.to_string()));
    let console = tracing_subscriber::fmt::layer()
        .with_writer(|| ConsoleWriter)
        .with_ansi(false)
        .with_filter(console_filter);
    let _ = tracing_subscriber::registry()
        .with(console)
        .with(RunLogLayer.with_filter(LevelFilter::INFO))
        .try_init();
}

/// From now on the console writes to `path` (appending) instead of stderr.
pub fn console_to_file(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening log file {}", path.display()))?;
    *CONSOLE.lock().unwrap_or_else(|e| e.into_inner()) = Some(file);
    Ok(())
}

/// The span a run trains in: what is logged inside it on its thread also lands in `log`.
pub fn run_span(log: &Path) -> tracing::Span {
    tracing::info_span!(RUN_SPAN, log = %log.display())
}

struct ConsoleWriter;

impl Write for ConsoleWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match CONSOLE.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            Some(file) => file.write(buf),
            None => std::io::stderr().write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match CONSOLE.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            Some(file) => file.flush(),
            None => std::io::stderr().flush(),
        }
    }
}

/// Writes the events inside a run's span to that run's `run.log`.
pub struct RunLogLayer;

/// The open `run.log` of a run span, kept in the span's extensions.
struct RunLogFile(Arc<Mutex<File>>);

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for RunLogLayer {
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: LayerContext<'_, S>,
    ) {
        if attrs.metadata().name() != RUN_SPAN {
            return;
        }
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        let Some(path) = fields.log else { return };
        // A run whose log cannot be opened still trains; its events reach the console.
        let Ok(file) = OpenOptions::new().create(true).append(true).open(&path) else {
            return;
        };
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(RunLogFile(Arc::new(Mutex::new(file))));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: LayerContext<'_, S>) {
        let Some(scope) = ctx.event_scope(event) else { return };
        let Some(file) = scope
            .into_iter()
            .find_map(|span| span.extensions().get::<RunLogFile>().map(|f| f.0.clone()))
        else {
            return;
        };
        let mut fields = Fields::default();
        event.record(&mut fields);
        let meta = event.metadata();
        let time = chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, false);
        let line =
            format!("{time} {:>5} {}: {}\n", meta.level().as_str(), meta.target(), fields.text);
        let mut file = file.lock().unwrap_or_else(|e| e.into_inner());
        let _ = file.write_all(line.as_bytes());
    }
}

/// An event's message and other fields as text; a run span's `log` field.
#[derive(Default)]
struct Fields {
    text: String,
    log: Option<String>,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => {
                let _ = write!(self.text, "{value:?}");
            }
            "log" => self.log = Some(format!("{value:?}")),
            name => {
                let _ = write!(self.text, " {name}={value:?}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_inside_a_run_span_land_in_that_runs_log_only() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.log"), dir.path().join("b.log"));
        let subscriber =
            tracing_subscriber::registry().with(RunLogLayer.with_filter(LevelFilter::INFO));
        tracing::subscriber::with_default(subscriber, || {
            run_span(&a).in_scope(|| {
                tracing::warn!(epoch = 3, "loss is {}", "rising");
                tracing::debug!("below the run log's level");
            });
            run_span(&b).in_scope(|| tracing::error!("b failed"));
            tracing::warn!("outside every run");
        });
        let a = std::fs::read_to_string(a).unwrap();
        let b = std::fs::read_to_string(b).unwrap();
        assert_eq!(a.lines().count(), 1, "{a}");
        assert!(a.contains(" WARN ") && a.contains("loss is rising epoch=3"), "{a}");
        assert!(b.contains("ERROR") && b.contains("b failed") && !b.contains("rising"), "{b}");
        assert!(!a.contains("outside") && !b.contains("outside"));
    }

    #[test]
    fn quiet_shows_errors_and_each_v_shows_more() {
        assert_eq!(console_level(0, false), LevelFilter::WARN);
        assert_eq!(console_level(2, true), LevelFilter::ERROR);
        assert_eq!(console_level(1, false), LevelFilter::INFO);
        assert_eq!(console_level(2, false), LevelFilter::DEBUG);
    }
}
