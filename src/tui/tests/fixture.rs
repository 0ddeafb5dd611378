//! A small but realistic recorded run, and a launcher that replays it instead of training.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::rc::Rc;

use ratatui::backend::TestBackend;
use ratatui::Terminal;
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};

use crate::config::{Ablation, Config};
use crate::events::{
    EpochRecord, GateUsage, Misclassified, RunInfo, RunSummary, StepRecord, TrainEvent,
};
use crate::metrics::{ClassMetrics, Metrics};
use crate::train::StopFlag;
use crate::tui::launcher::{LaunchedRun, Launcher};
use crate::tui::App;

pub use crate::data::AXIOM_LABELS as LABELS;
pub const STEPS_PER_EPOCH: usize = 20;

pub fn config() -> Config {
    Config::from_toml_str(
        "[data]\nformat = \"axiom\"\ntrain = \"train.json\"\n\
         [text_encoder]\nmodel = \"m\"\n[train]\nepochs = 2\nbatch_size = 16\n",
    )
    .unwrap()
}

fn metrics(f1: [f64; 6], macro_f1: f64, weighted_f1: f64) -> Metrics {
    Metrics {
        macro_f1,
        weighted_f1,
        per_class: LABELS
            .iter()
            .zip(f1)
            .map(|(label, f1)| ClassMetrics {
                label: label.to_string(),
                precision: (f1 + 0.02).min(1.0),
                recall: (f1 - 0.02).max(0.0),
                f1,
                support: 40,
            })
            .collect(),
        confusion: Some(confusion()),
        samples_f1: None,
        accuracy: weighted_f1,
    }
}

/// 40 samples per class: 34 right, 6 given one other class (among them the listed mistakes:
/// 0 → 2, 5 → 4, 1 → 2, 4 → 3).
pub fn confusion() -> Vec<Vec<usize>> {
    let wrong = [2, 2, 1, 0, 3, 4];
    (0..6)
        .map(|t| {
            (0..6)
                .map(|p| {
                    if p == t {
                        34
                    } else if p == wrong[t] {
                        6
                    } else {
                        0
                    }
                })
                .collect()
        })
        .collect()
}

fn mistake(
    id: &str,
    text: &str,
    reasoning: Option<&str>,
    truth: usize,
    predicted: usize,
    p: f32,
) -> Misclassified {
    let mut probabilities = vec![(1.0 - p) / 5.0; 6];
    probabilities[predicted] = p;
    Misclassified {
        sample_id: id.to_string(),
        text: text.to_string(),
        reasoning: reasoning.map(str::to_string),
        image: Some(PathBuf::from("/nonexistent/memescope-test.png")),
        truth: vec![truth],
        predicted: vec![predicted],
        probabilities,
    }
}

pub fn misclassified() -> Vec<Misclassified> {
    vec![
        mistake("ax-101", "me when the group chat goes silent", None, 0, 2, 0.91),
        mistake("ax-102", "the world is ending and I am just sitting here", None, 5, 4, 0.64),
        mistake(
            "ax-103",
            "cannot stop thinking about that email",
            Some("the endless loop stands for rumination, an ironic take on focus"),
            1,
            2,
            0.77,
        ),
        mistake("ax-104", "my leg will not stop bouncing", None, 4, 3, 0.42),
    ]
}

fn step(epoch: usize, global_step: usize) -> TrainEvent {
    let loss = 1.8 - global_step as f32 * 0.02;
    TrainEvent::Step(StepRecord {
        epoch,
        global_step,
        loss,
        components: BTreeMap::from([
            ("classification".to_string(), loss * 0.7),
            ("contrastive_text_image".to_string(), loss * 0.3),
        ]),
        // Decays linearly to 2.5e-5 at the last step (40).
        lr: 1e-3 * (41 - global_step) as f64 / 40.0,
        samples: 32,
        samples_per_second: 512.0,
        device_memory: None,
    })
}

/// A two-epoch run of `run_id`. Its macro F1 reaches `final_macro` (0.712 by default),
/// expert 3 collapses, and four validation samples are misclassified.
pub fn recorded_run(run_id: &str, ablation: Ablation, final_macro: f64) -> Vec<TrainEvent> {
    let run_dir = PathBuf::from(format!("runs/{run_id}"));
    let mut events = vec![
        TrainEvent::RunStarted(RunInfo {
            run_id: run_id.to_string(),
            run_dir: run_dir.clone(),
            dataset: "AxiOM".to_string(),
            labels: LABELS.iter().map(|l| l.to_string()).collect(),
            multi_label: false,
            train_samples: 320,
            val_samples: 240,
            masked_images: 0,
            device: "cpu".to_string(),
            precision: Default::default(),
            text_encoder: "all-MiniLM-L6-v2".to_string(),
            vision_encoder: None,
            text_only_reason: Some("no image folder".to_string()),
            ablation,
            epochs: 2,
            steps_per_epoch: STEPS_PER_EPOCH,
            parameters: 123_456,
        }),
        TrainEvent::Stage { name: "cache".to_string(), detail: "text features: hit".to_string() },
    ];
    let gates =
        ablation.moe.then(|| GateUsage {
            per_expert: vec![0.45, 0.35, 0.18, 0.02],
            per_class: (0..6)
                .map(|c| {
                    if c % 2 == 0 {
                        vec![0.6, 0.2, 0.18, 0.02]
                    } else {
                        vec![0.2, 0.6, 0.18, 0.02]
                    }
                })
                .collect(),
        });
    let epochs = [
        (metrics([0.75, 0.55, 0.60, 0.62, 0.66, 0.70], 0.650, 0.680), 1.1),
        (metrics([0.80, 0.62, 0.70, 0.69, 0.72, 0.74], final_macro, final_macro + 0.033), 0.9),
    ];
    for (epoch, (metrics, val_loss)) in epochs.into_iter().enumerate() {
        for s in 0..STEPS_PER_EPOCH {
            events.push(step(epoch, epoch * STEPS_PER_EPOCH + s + 1));
        }
        events.push(TrainEvent::Epoch(Box::new(EpochRecord {
            epoch,
            train_loss: 1.5 - epoch as f32 * 0.3,
            val_loss,
            metrics,
            thresholds: None,
            gates: gates.clone(),
            misclassified: if epoch == 1 { misclassified() } else { misclassified()[..1].to_vec() },
            is_best: true,
            seconds: 12.0,
        })));
    }
    events.push(TrainEvent::CheckpointSaved {
        epoch: 1,
        path: run_dir.join("best.safetensors"),
        best: true,
    });
    events.push(TrainEvent::Finished(RunSummary {
        run_dir,
        best_epoch: 1,
        epochs_run: 2,
        macro_f1: final_macro,
        weighted_f1: final_macro + 0.033,
        seconds: 24.0,
    }));
    events
}

/// An app that has shown the whole recorded run (as `watch` would after a replay).
pub fn replayed_app() -> App {
    let mut app = App::watch(PathBuf::from("/nonexistent/runs/run-a"));
    for event in recorded_run("run-a", Ablation::default(), 0.712) {
        app.apply_event(event);
    }
    app
}

/// What the fake launcher was asked to start.
#[derive(Default)]
pub struct Launches {
    pub configs: Vec<Config>,
    pub stops: Vec<StopFlag>,
    /// Senders of runs kept open (still "training").
    pub open: Vec<UnboundedSender<TrainEvent>>,
}

/// Replays a recorded run for each launch, named `run-1`, `run-2`, ...; with
/// `keep_open` the run never ends (its channel stays open after the events).
pub struct FakeLauncher {
    pub launches: Rc<RefCell<Launches>>,
    pub keep_open: bool,
}

impl Launcher for FakeLauncher {
    fn launch(&mut self, config: Config) -> LaunchedRun {
        let mut launches = self.launches.borrow_mut();
        let (sender, events) = unbounded_channel();
        let id = format!("run-{}", launches.configs.len() + 1);
        let replay =
            recorded_run(&id, config.ablation, 0.70 + launches.configs.len() as f64 * 0.01);
        let replay = if self.keep_open { replay[..25].to_vec() } else { replay };
        for event in replay {
            sender.send(event).unwrap();
        }
        let stop = StopFlag::default();
        launches.configs.push(config);
        launches.stops.push(stop.clone());
        if self.keep_open {
            launches.open.push(sender);
        }
        LaunchedRun { events, stop }
    }
}

/// Types `seeds` into the Ablations pane's "repeat with N seeds" row, starts the setup and
/// replays every run to its end.
pub fn start_repeats(app: &mut App, seeds: usize) {
    use crossterm::event::{KeyCode, KeyEvent};
    let mut press = |code| app.handle_key(KeyEvent::from(code));
    press(KeyCode::Char('5'));
    for _ in 0..crate::tui::panes::ablations::START_ROW - 1 {
        press(KeyCode::Char('j'));
    }
    press(KeyCode::Enter);
    press(KeyCode::Backspace);
    seeds.to_string().chars().for_each(|c| press(KeyCode::Char(c)));
    press(KeyCode::Enter);
    press(KeyCode::Char('r'));
    app.drain_active(usize::MAX);
}

pub fn live_app(keep_open: bool) -> (App, Rc<RefCell<Launches>>) {
    let launches = Rc::new(RefCell::new(Launches::default()));
    let launcher = FakeLauncher { launches: launches.clone(), keep_open };
    let mut base = config();
    base.paths.runs = PathBuf::from("/nonexistent/memescope-runs");
    (App::live(base, Box::new(launcher)), launches)
}

/// Draws the app on a `width`×`height` test terminal and returns the screen as text.
pub fn render(app: &mut App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|frame| crate::tui::draw(frame, app)).unwrap();
    let buffer = terminal.backend().buffer();
    let mut screen = String::new();
    for y in 0..buffer.area.height {
        for x in 0..buffer.area.width {
            screen.push_str(buffer[(x, y)].symbol());
        }
        screen.push('\n');
    }
    screen
}
