//! SIGINT and SIGTERM as a request to stop. The first one asks the run in flight to stop at
//! its next step boundary (schedulers — `kill`, Slurm, Kubernetes, systemd — send SIGTERM
//! and wait a grace period); a second one ends the process at once. After a stop the
//! process exits the way shells report a signal: 128 + its number (130, 143).

use std::process::ExitCode;

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

/// A stop-requesting signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    Interrupt,
    Terminate,
}

impl StopSignal {
    pub fn number(self) -> i32 {
        match self {
            StopSignal::Interrupt => libc::SIGINT,
            StopSignal::Terminate => libc::SIGTERM,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            StopSignal::Interrupt => "SIGINT",
            StopSignal::Terminate => "SIGTERM",
        }
    }

    /// What a shell reports for a process ended by this signal.
    pub fn exit_code(self) -> ExitCode {
        ExitCode::from(128 + self.number() as u8)
    }
}

/// Watches for SIGINT and SIGTERM from the moment it is made (inside a tokio runtime).
#[derive(Clone)]
pub struct StopSignals {
    received: watch::Receiver<Option<StopSignal>>,
}

impl StopSignals {
    pub fn listen() -> std::io::Result<Self> {
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        let (sender, received) = watch::channel(None);
        tokio::spawn(async move {
            let first = next(&mut interrupt, &mut terminate).await;
            let _ = sender.send(Some(first));
            let second = next(&mut interrupt, &mut terminate).await;
            eprintln!("\n{}: stopping now", second.name());
            std::process::exit(128 + second.number());
        });
        Ok(Self { received })
    }

    /// Waits for the first signal.
    pub async fn first(&self) -> StopSignal {
        let mut received = self.received.clone();
        let signal = received.wait_for(Option::is_some).await.ok().and_then(|s| *s);
        match signal {
            Some(signal) => signal,
            // The watcher never ends before the process does.
            None => std::future::pending().await,
        }
    }

    /// The first signal, if one came.
    pub fn received(&self) -> Option<StopSignal> {
        *self.received.borrow()
    }
}

async fn next(
    interrupt: &mut tokio::signal::unix::Signal,
    terminate: &mut tokio::signal::unix::Signal,
) -> StopSignal {
    tokio::select! {
        _ = interrupt.recv() => StopSignal::Interrupt,
        _ = terminate.recv() => StopSignal::Terminate,
    }
}
