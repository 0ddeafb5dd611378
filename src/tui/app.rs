//! The dashboard's state and what keys and trainer events do to it. No terminal here:
//! tests drive an `App` directly.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseEvent, MouseEventKind};
use tokio::sync::mpsc::error::TryRecvError;

use super::known_runs::KnownRuns;
use super::launcher::{LaunchedRun, Launcher};
use super::panes::ablations::{AblationCommand, AblationsPane};
use super::panes::confusion::{ConfusionKey, ConfusionPane};
use super::panes::errors::ErrorsPane;
use super::panes::loss::LossPane;
use super::panes::runs::{RunsKey, RunsPane};
use super::panes::Pane;
use super::run_view::RunView;
use crate::config::Config;
use crate::events::TrainEvent;
use crate::plan::Plan;
use crate::runs::{RunDir, RunStatus};

/// How often the runs folder is looked at again for new runs and for the progress of
/// unfinished ones (other processes' and machines' runs in a shared folder): a listing and
/// a read of what each unfinished run appended, cheap enough for the redraw loop.
pub const RUNS_RESCAN: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlay {
    None,
    Help,
    /// "A training is running: stop it and quit?"
    ConfirmQuit,
}

/// Where runs come from: started here, or one run followed from its events file.
enum Mode {
    Live { launcher: Box<dyn Launcher>, base: Box<Config> },
    Watch { run_dir: PathBuf },
}

pub struct App {
    pub pane: Pane,
    pub overlay: Overlay,
    /// The run the Loss, F1, Gates and Errors panes show: the latest one started.
    pub view: RunView,
    pub runs: KnownRuns,
    pub loss: LossPane,
    pub errors: ErrorsPane,
    pub ablations: AblationsPane,
    pub runs_pane: RunsPane,
    pub confusion: ConfusionPane,
    /// A one-line message about the last command ("queued 6 runs").
    pub notice: Option<String>,
    /// Whether the training data has figurative reasoning (adds a run to the sweep).
    pub data_has_reasoning: bool,
    /// Runs waiting for the active one to end, in order.
    pub queue: VecDeque<Config>,
    mode: Mode,
    active: Option<LaunchedRun>,
    /// The config of the active run, until its `RunStarted` names its id.
    launched: Option<Config>,
    runs_dir: Option<PathBuf>,
    last_runs_scan: Option<Instant>,
    quit: bool,
    stop_requested: bool,
}

impl App {
    /// A dashboard that starts runs from `base` (its ablation is the initial checkboxes).
    pub fn live(base: Config, launcher: Box<dyn Launcher>) -> Self {
        let runs_dir = Some(base.paths.runs.clone());
        let ablations = AblationsPane::new(base.clone());
        let mut app =
            Self::new(Mode::Live { launcher, base: Box::new(base.clone()) }, ablations, runs_dir);
        app.runs.base = Some(base);
        app
    }

    /// A read-only dashboard over one run directory.
    pub fn watch(run_dir: PathBuf) -> Self {
        let runs_dir = run_dir.parent().map(PathBuf::from);
        let watched = RunDir::at(&run_dir).read_config().ok();
        let mut app = Self::new(Mode::Watch { run_dir }, AblationsPane::watching(), runs_dir);
        app.runs.base = watched;
        app
    }

    fn new(mode: Mode, ablations: AblationsPane, runs_dir: Option<PathBuf>) -> Self {
        Self {
            pane: Pane::Loss,
            overlay: Overlay::None,
            view: RunView::default(),
            runs: KnownRuns::default(),
            loss: LossPane::default(),
            errors: ErrorsPane::default(),
            ablations,
            runs_pane: RunsPane::default(),
            confusion: ConfusionPane::default(),
            notice: None,
            data_has_reasoning: false,
            queue: VecDeque::new(),
            mode,
            active: None,
            launched: None,
            last_runs_scan: None,
            runs_dir,
            quit: false,
            stop_requested: false,
        }
    }

    pub fn should_quit(&self) -> bool {
        self.quit
    }

    /// Whether a run started here is still sending events.
    pub fn is_training(&self) -> bool {
        self.active.is_some()
    }

    pub fn watched_dir(&self) -> Option<&PathBuf> {
        match &self.mode {
            Mode::Watch { run_dir } => Some(run_dir),
            Mode::Live { .. } => None,
        }
    }

    /// Lists the runs found on disk (earlier sessions, other processes and machines) and
    /// brings the unfinished ones up to date; whether any row changed.
    pub fn scan_runs(&mut self) -> bool {
        self.last_runs_scan = Some(Instant::now());
        match self.runs_dir.clone() {
            Some(dir) => self.runs.scan(&dir),
            None => false,
        }
    }

    /// [`App::scan_runs`], at most every [`RUNS_RESCAN`] (the redraw tick calls it).
    pub fn scan_runs_if_due(&mut self) -> bool {
        match self.last_runs_scan {
            Some(last) if last.elapsed() < RUNS_RESCAN => false,
            _ => self.scan_runs(),
        }
    }

    /// The active run's event channel, for the last events of a stopped run at quit.
    pub fn active_events(
        &mut self,
    ) -> Option<&mut tokio::sync::mpsc::UnboundedReceiver<TrainEvent>> {
        self.active.as_mut().map(|run| &mut run.events)
    }

    /// Applies an event of the shown run (live or watched).
    pub fn apply_event(&mut self, event: TrainEvent) {
        if let TrainEvent::Failed { message } = &event {
            tracing::error!("run failed: {message}");
            self.notice = Some(format!("Training failed: {message}"));
        }
        self.view.apply(&event);
        let id = self.view.run_id().map(str::to_string);
        self.runs.apply(id.as_deref(), &event);
        // The trainer may report stages before `RunStarted`: the config waits for it.
        if let TrainEvent::RunStarted(info) = &event {
            if let Some(config) = self.launched.take() {
                self.runs.set_config(&info.run_id, config);
            }
        }
    }

    /// Applies at most `limit` events already waiting on the active run, without waiting,
    /// and handles the run's end (which may start the next queued run). Returns how many
    /// were taken, the end counting as one. The event loop calls this once per tick, so a
    /// backlog of thousands of steps cannot hold up drawing and keys.
    pub fn drain_active(&mut self, limit: usize) -> usize {
        let mut taken = 0;
        while taken < limit {
            let Some(run) = self.active.as_mut() else { break };
            match run.events.try_recv() {
                Ok(event) => self.apply_event(event),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => self.on_active_closed(),
            }
            taken += 1;
        }
        taken
    }

    /// The active run's channel closed: it has sent its last event.
    pub fn on_active_closed(&mut self) {
        self.active = None;
        if self.view.status.is_some_and(RunStatus::is_active) {
            self.apply_event(TrainEvent::Failed {
                message: "the trainer ended without reporting an outcome".to_string(),
            });
        }
        self.scan_runs();
        if !self.quit {
            if let Some(next) = self.queue.pop_front() {
                self.launch(next);
            }
        }
    }

    fn launch(&mut self, config: Config) {
        let Mode::Live { launcher, .. } = &mut self.mode else {
            return;
        };
        let label = self.runs.label_of(&config);
        tracing::info!("starting run: {label}");
        self.notice = Some(format!("Started a run: {label}"));
        self.launched = Some(config.clone());
        self.view = RunView::preparing(Some(config.train.batch_size));
        self.errors.selected = 0;
        self.errors.detail_open = false;
        self.active = Some(launcher.launch(config));
    }

    /// Starts a run of the base config right away (`memescope train` on a terminal).
    pub fn start_base_run(&mut self) {
        if let Mode::Live { base, .. } = &self.mode {
            let config = (**base).clone();
            self.start_or_queue(vec![config]);
        }
    }

    /// Starts `configs` one after another, after the active run if there is one.
    fn start_or_queue(&mut self, configs: Vec<Config>) {
        let count = configs.len();
        self.queue.extend(configs);
        if self.active.is_none() {
            if let Some(first) = self.queue.pop_front() {
                self.launch(first);
            }
        }
        if self.active.is_some() && !self.queue.is_empty() {
            self.notice = Some(format!(
                "{count} run(s) requested; {} waiting for the current run to end",
                self.queue.len()
            ));
        }
    }

    fn run_command(&mut self, command: AblationCommand) {
        if let Mode::Watch { .. } = &self.mode {
            self.notice = Some("Watching a run: starting runs needs `memescope tui`.".to_string());
            return;
        }
        let configs = match command {
            AblationCommand::Start(configs) => configs,
            AblationCommand::Sweep(base) => {
                Plan::leave_one_out(&base, self.data_has_reasoning).configs()
            }
            AblationCommand::Refused(message) => {
                self.notice = Some(message);
                return;
            }
        };
        self.start_or_queue(configs);
    }

    /// Asks the active run to stop and drops the runs waiting after it.
    fn stop_active(&mut self) {
        if let Some(run) = &self.active {
            run.stop.request();
            self.stop_requested = true;
            let dropped = std::mem::take(&mut self.queue).len();
            self.notice = Some(match dropped {
                0 => "Stopping the run at the next step…".to_string(),
                n => format!("Stopping the run at the next step; {n} queued run(s) cancelled"),
            });
        }
    }

    /// A signal closes the dashboard: the run in flight stops at its next step first.
    pub fn stop_and_quit(&mut self) {
        self.stop_active();
        self.quit = true;
    }

    pub fn stop_was_requested(&self) -> bool {
        self.stop_requested
    }

    fn request_quit(&mut self) {
        if self.active.is_some() {
            self.overlay = Overlay::ConfirmQuit;
        } else {
            self.quit = true;
        }
    }

    /// The note under the ablation switches: why nothing can start, or what waits.
    pub fn launch_note(&self) -> String {
        match &self.mode {
            Mode::Watch { .. } => "Watching a run: read-only, runs cannot be started here.".into(),
            Mode::Live { .. } if !self.queue.is_empty() => {
                let labels: Vec<String> =
                    self.queue.iter().map(|c| self.runs.label_of(c)).collect();
                format!("Queued: {}", labels.join(" | "))
            }
            Mode::Live { .. } if self.active.is_some() => "A run is in progress.".into(),
            Mode::Live { .. } => "No run in progress.".into(),
        }
    }

    pub fn handle_mouse(&mut self, mouse: MouseEvent) {
        let by = match mouse.kind {
            MouseEventKind::ScrollDown => 1,
            MouseEventKind::ScrollUp => -1,
            _ => return,
        };
        match self.pane {
            Pane::Errors => self.errors.scroll(by, self.view.misclassified()),
            Pane::Ablations => self.ablations.scroll(by),
            Pane::Runs => self.runs_pane.scroll(by, &self.runs),
            Pane::Loss | Pane::F1 | Pane::Gates | Pane::Confusion => {}
        }
    }

    pub fn handle_key(&mut self, key: KeyEvent) {
        if key.kind == KeyEventKind::Release {
            return;
        }
        let ctrl_c =
            key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c');
        match self.overlay {
            Overlay::Help => {
                self.overlay = Overlay::None;
                return;
            }
            Overlay::ConfirmQuit => {
                match key.code {
                    KeyCode::Char('y') | KeyCode::Char('Y') => {
                        self.stop_active();
                        self.quit = true;
                    }
                    KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc => {
                        self.overlay = Overlay::None
                    }
                    _ => {}
                }
                return;
            }
            Overlay::None => {}
        }
        if ctrl_c {
            self.request_quit();
            return;
        }
        // While typing a search every printable key is text.
        if self.pane == Pane::Errors && self.errors.is_typing() {
            let classes = self.view.labels().len();
            self.errors.handle_key(key, self.view.misclassified(), classes);
            return;
        }
        if self.pane == Pane::Ablations && self.ablations.is_typing() {
            self.ablations.handle_key(key);
            return;
        }
        if self.handle_pane_key(key) {
            return;
        }
        match key.code {
            KeyCode::Char('q') => self.request_quit(),
            KeyCode::Char('?') => self.overlay = Overlay::Help,
            KeyCode::Char('x') => self.stop_active(),
            KeyCode::Tab => self.pane = self.pane.next(),
            KeyCode::BackTab => self.pane = self.pane.previous(),
            KeyCode::Char(c) => {
                if let Some(pane) = Pane::for_key(c) {
                    self.pane = pane;
                }
            }
            _ => {}
        }
    }

    fn handle_pane_key(&mut self, key: KeyEvent) -> bool {
        match self.pane {
            Pane::Loss => self.loss.handle_key(key),
            Pane::F1 | Pane::Gates => false,
            Pane::Errors => {
                let classes = self.view.labels().len();
                self.errors.handle_key(key, self.view.misclassified(), classes)
            }
            Pane::Ablations => match self.ablations.handle_key(key) {
                None => false,
                Some(None) => true,
                Some(Some(command)) => {
                    self.run_command(command);
                    true
                }
            },
            Pane::Confusion => match self.confusion.handle_key(key, &self.view) {
                ConfusionKey::Ignored => false,
                ConfusionKey::Handled => true,
                ConfusionKey::Open(cell) => {
                    self.errors.show_cell(cell);
                    self.pane = Pane::Errors;
                    true
                }
            },
            Pane::Runs => match self.runs_pane.handle_key(key, &self.runs) {
                RunsKey::Ignored => false,
                RunsKey::Handled => true,
                RunsKey::Archive(ids) => {
                    self.archive_runs(&ids);
                    true
                }
            },
        }
    }

    /// Moves runs to `<runs>/archive/` (the Runs pane asked for `y` first). The run in
    /// progress stays.
    fn archive_runs(&mut self, ids: &[String]) {
        let Some(runs_dir) = self.runs_dir.clone() else { return };
        let active = self.active.as_ref().and(self.view.run_id()).map(str::to_string);
        let mut moved = 0;
        let mut problems = Vec::new();
        for id in ids {
            if active.as_deref() == Some(id.as_str()) {
                problems.push(format!("{id} is running"));
                continue;
            }
            match RunDir::at(&runs_dir.join(id)).archive() {
                Ok(_) => {
                    self.runs.rows.retain(|row| row.id != *id);
                    moved += 1;
                }
                Err(err) => problems.push(format!("{err:#}")),
            }
        }
        let rows = self.runs_pane.rows(&self.runs).len();
        self.runs_pane.selected = self.runs_pane.selected.min(rows.saturating_sub(1));
        self.notice = Some(match problems.is_empty() {
            true => format!("Archived {moved} run(s) to {}", runs_dir.join("archive").display()),
            false => format!("Archived {moved} run(s); not archived: {}", problems.join("; ")),
        });
    }
}
