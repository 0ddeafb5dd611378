//! Key handling on the app state, with a launcher that replays recorded runs.

use std::path::PathBuf;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::fixture::{live_app, recorded_run, replayed_app};
use crate::config::Ablation;
use crate::events::TrainEvent;
use crate::plan::{leave_one_out_modules, Plan};
use crate::runs::RunStatus;
use crate::tui::{App, Overlay, Pane};

fn press(app: &mut App, code: KeyCode) {
    app.handle_key(KeyEvent::from(code));
}

fn type_text(app: &mut App, text: &str) {
    text.chars().for_each(|c| press(app, KeyCode::Char(c)));
}

#[test]
fn number_keys_and_tab_switch_panes() {
    let mut app = replayed_app();
    press(&mut app, KeyCode::Char('4'));
    assert_eq!(app.pane, Pane::Errors);
    press(&mut app, KeyCode::Tab);
    assert_eq!(app.pane, Pane::Ablations);
    press(&mut app, KeyCode::BackTab);
    press(&mut app, KeyCode::BackTab);
    assert_eq!(app.pane, Pane::Gates);
    press(&mut app, KeyCode::Char('7'));
    assert_eq!(app.pane, Pane::Confusion);
    press(&mut app, KeyCode::Tab);
    assert_eq!(app.pane, Pane::Loss, "Tab wraps around");
}

#[test]
fn every_pane_has_its_digit_and_other_digits_do_nothing() {
    let mut app = replayed_app();
    for (i, &pane) in Pane::ALL.iter().enumerate() {
        let key = char::from_digit(i as u32 + 1, 10).unwrap();
        assert_eq!(pane.key(), key);
        press(&mut app, KeyCode::Char(key));
        assert_eq!(app.pane, pane);
    }
    let last = app.pane;
    let past_the_last = char::from_digit(Pane::ALL.len() as u32 + 1, 10);
    for key in std::iter::once('0').chain(past_the_last) {
        press(&mut app, KeyCode::Char(key));
        assert_eq!(app.pane, last, "{key} is no pane's key");
    }
    assert_eq!(Pane::key_range(), format!("1-{}", Pane::ALL.len()));
}

#[test]
fn toggled_switch_is_used_by_the_next_launch() {
    let (mut app, launches) = live_app(false);
    press(&mut app, KeyCode::Char('5'));
    for _ in 0..4 {
        press(&mut app, KeyCode::Down);
    }
    press(&mut app, KeyCode::Char(' ')); // moe off
    press(&mut app, KeyCode::Char('k'));
    press(&mut app, KeyCode::Char(' ')); // cross_attention off
    press(&mut app, KeyCode::Char('r'));
    let launched = &launches.borrow().configs;
    assert_eq!(launched.len(), 1);
    let ablation = launched[0].ablation;
    assert!(!ablation.moe && !ablation.cross_attention && ablation.image && ablation.ocr);
    assert_eq!(launched[0].train.epochs, 2, "the rest of the config is the base config");
}

/// Moves the Ablations pane's cursor to the value row of `key` and types `value` there.
fn edit_value(app: &mut App, key: &str, value: &str) {
    app.pane = Pane::Ablations;
    app.ablations.cursor = 0;
    let row = crate::tui::next_run::KNOBS.iter().position(|k| *k == key).unwrap();
    for _ in 0..crate::config::ABLATION_SWITCHES.len() + row {
        press(app, KeyCode::Char('j'));
    }
    press(app, KeyCode::Enter);
    while !app.ablations.editor.as_ref().unwrap().text.is_empty() {
        press(app, KeyCode::Backspace);
    }
    type_text(app, value);
    press(app, KeyCode::Enter);
}

#[test]
fn an_edited_value_starts_the_next_run_and_labels_it() {
    let (mut app, launches) = live_app(false);
    edit_value(&mut app, "train.lr", "3e-4");
    assert!(app.ablations.editor.is_none(), "a valid value closes the editor");
    press(&mut app, KeyCode::Char('r'));
    app.drain_active(usize::MAX);
    let launched = &launches.borrow().configs;
    assert_eq!((launched[0].train.lr, launched[0].train.epochs), (3e-4, 2));
    assert_eq!(app.runs.get("run-1").unwrap().label, "lr=3e-4");
    assert!(app.notice.as_deref().unwrap().contains("lr=3e-4"));
}

#[test]
fn a_stage_before_run_started_does_not_lose_the_runs_config() {
    let (mut app, _) = live_app(false);
    edit_value(&mut app, "train.lr", "3e-4");
    press(&mut app, KeyCode::Char('r'));
    // The real trainer reports stages (loading data, the cache) before `RunStarted`.
    app.apply_event(TrainEvent::Stage { name: "data".to_string(), detail: String::new() });
    app.drain_active(usize::MAX);
    assert_eq!(app.runs.get("run-1").unwrap().label, "lr=3e-4");
}

#[test]
fn runs_differing_by_a_value_are_labelled_apart() {
    let (mut app, _) = live_app(false);
    edit_value(&mut app, "train.lr", "3e-4");
    press(&mut app, KeyCode::Char('r'));
    app.drain_active(usize::MAX);
    edit_value(&mut app, "train.lr", "1e-4");
    press(&mut app, KeyCode::Char('r'));
    app.drain_active(usize::MAX);
    let labels: Vec<&str> = app.runs.rows.iter().map(|r| r.label.as_str()).collect();
    assert_eq!(labels, ["lr=3e-4", "lr=1e-4"]);
}

#[test]
fn repeat_with_seeds_queues_one_run_per_seed() {
    let (mut app, launches) = live_app(false);
    super::fixture::start_repeats(&mut app, 3);
    let seeds: Vec<u64> = launches.borrow().configs.iter().map(|c| c.train.seed).collect();
    assert_eq!(seeds, [42, 43, 44]);
    let labels: Vec<&str> = app.runs.rows.iter().map(|r| r.label.as_str()).collect();
    assert_eq!(labels, ["base", "seed=43", "seed=44"]);
    assert!(app.runs.rows.iter().all(|r| r.seedless == "base"));
}

#[test]
fn enter_on_start_row_launches_and_events_reach_the_panes() {
    let (mut app, launches) = live_app(false);
    app.pane = Pane::Ablations;
    for _ in 0..crate::tui::panes::ablations::START_ROW {
        press(&mut app, KeyCode::Char('j'));
    }
    press(&mut app, KeyCode::Enter);
    assert_eq!(launches.borrow().configs.len(), 1);
    assert!(app.is_training());
    app.drain_active(usize::MAX);
    assert!(!app.is_training(), "the replay ended");
    assert_eq!(app.view.status, Some(RunStatus::Finished));
    assert_eq!(app.view.misclassified().len(), 4);
    let row = app.runs.get("run-1").expect("the run is listed");
    assert_eq!((row.status, row.macro_f1), (RunStatus::Finished, Some(0.70)));
}

#[test]
fn events_are_taken_a_bounded_number_at_a_time() {
    let (mut app, launches) = live_app(false);
    app.pane = Pane::Ablations;
    press(&mut app, KeyCode::Char('r'));
    let total = recorded_run("run-1", Ablation::default(), 0.7).len();
    // RunStarted, a stage message, then steps 1, 2, ...
    assert_eq!(app.drain_active(10), 10);
    assert_eq!(app.view.global_step, 8, "events are applied in order");
    assert!(app.is_training(), "the rest waits for the next tick");
    assert_eq!(app.drain_active(10), 10);
    assert_eq!(app.view.global_step, 18);
    // The rest, and the channel's end (counted as one): the run is over.
    assert_eq!(app.drain_active(usize::MAX), total - 20 + 1);
    assert!(!app.is_training());
    assert_eq!(app.drain_active(10), 0, "nothing left to take");
    assert_eq!(launches.borrow().configs.len(), 1);
}

#[test]
fn sweep_runs_leave_one_out_configs_one_after_another() {
    let (mut app, launches) = live_app(false);
    app.data_has_reasoning = true;
    app.pane = Pane::Ablations;
    press(&mut app, KeyCode::Char(' ')); // image off in the pane: the sweep ignores it
    press(&mut app, KeyCode::Char('s'));
    assert_eq!(launches.borrow().configs.len(), 1, "only one run at a time");
    assert_eq!(app.queue.len(), leave_one_out_modules().count() + 1, "+figurative waits too");
    app.drain_active(usize::MAX); // each replay ends, which starts the next
    let labels: Vec<String> =
        launches.borrow().configs.iter().map(|c| c.ablation.short_label()).collect();
    // The plan's own order (its labels are checked in crate::plan), all of it run.
    let expected: Vec<String> = Plan::leave_one_out(&launches.borrow().configs[0], true)
        .configs()
        .iter()
        .map(|c| c.ablation.short_label())
        .collect();
    assert_eq!(labels, expected);
    assert_eq!(app.runs.rows.len(), 8);
    assert!(app.runs.rows.iter().all(|r| r.status == RunStatus::Finished));
}

#[test]
fn a_run_requested_while_training_waits_in_the_queue() {
    let (mut app, launches) = live_app(true);
    app.pane = Pane::Ablations;
    press(&mut app, KeyCode::Char('r'));
    app.drain_active(usize::MAX);
    press(&mut app, KeyCode::Char('r'));
    assert_eq!(launches.borrow().configs.len(), 1);
    assert_eq!(app.queue.len(), 1);
    assert!(app.notice.as_deref().unwrap().contains("waiting"));
    // The first run ends (its channel closes without a final event): the next starts,
    // and the silent end is reported as a failure rather than left "running".
    launches.borrow_mut().open.clear();
    app.drain_active(usize::MAX);
    assert_eq!(launches.borrow().configs.len(), 2);
    assert_eq!(app.runs.get("run-1").unwrap().status, RunStatus::Failed);
}

#[test]
fn search_filters_errors_and_esc_restores_the_previous_query() {
    let mut app = replayed_app();
    press(&mut app, KeyCode::Char('4'));
    press(&mut app, KeyCode::Char('/'));
    type_text(&mut app, "Stop");
    let items = app.view.misclassified().to_vec();
    // Case-insensitive: "cannot stop thinking", "will not stop bouncing".
    assert_eq!(app.errors.visible(&items).len(), 2);
    press(&mut app, KeyCode::Backspace);
    type_text(&mut app, "p 1"); // digits are text while typing, not pane switches
    assert_eq!(app.pane, Pane::Errors);
    press(&mut app, KeyCode::Esc);
    assert_eq!(app.errors.search, "");
    assert_eq!(app.errors.visible(&items).len(), 4);

    press(&mut app, KeyCode::Char('/'));
    type_text(&mut app, "bouncing");
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.errors.visible(&items), vec![3]);
    assert_eq!(app.errors.selected_sample(&items).unwrap().sample_id, "ax-104");
}

#[test]
fn sort_order_flips_confidence() {
    let mut app = replayed_app();
    app.pane = Pane::Errors;
    let items = app.view.misclassified().to_vec();
    assert_eq!(app.errors.visible(&items), vec![0, 2, 1, 3]); // 0.91, 0.77, 0.64, 0.42
    press(&mut app, KeyCode::Char('o'));
    assert_eq!(app.errors.visible(&items), vec![3, 1, 2, 0]);
}

#[test]
fn quit_asks_while_training_and_stops_the_run_on_yes() {
    let (mut app, launches) = live_app(true);
    app.pane = Pane::Ablations;
    press(&mut app, KeyCode::Char('r'));
    press(&mut app, KeyCode::Char('q'));
    assert_eq!(app.overlay, Overlay::ConfirmQuit);
    press(&mut app, KeyCode::Char('n'));
    assert!(!app.should_quit() && app.overlay == Overlay::None);
    assert!(!launches.borrow().stops[0].is_requested());

    app.handle_key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
    assert_eq!(app.overlay, Overlay::ConfirmQuit);
    press(&mut app, KeyCode::Char('y'));
    assert!(app.should_quit());
    assert!(launches.borrow().stops[0].is_requested());
}

#[test]
fn quit_is_immediate_without_a_run() {
    let mut app = replayed_app();
    press(&mut app, KeyCode::Char('q'));
    assert!(app.should_quit());
    assert_eq!(app.overlay, Overlay::None);
}

#[test]
fn x_stops_the_run_and_cancels_the_queue() {
    let (mut app, launches) = live_app(true);
    app.pane = Pane::Ablations;
    press(&mut app, KeyCode::Char('s'));
    assert_eq!(app.queue.len(), leave_one_out_modules().count(), "all but the first run wait");
    press(&mut app, KeyCode::Char('x'));
    assert!(launches.borrow().stops[0].is_requested());
    assert!(app.queue.is_empty());
}

#[test]
fn watch_mode_cannot_launch_and_says_why() {
    let mut app = replayed_app();
    app.pane = Pane::Ablations;
    press(&mut app, KeyCode::Char('r'));
    assert!(!app.is_training());
    assert!(app.notice.as_deref().unwrap().contains("Watching"));
}

#[test]
fn failed_run_keeps_the_app_usable() {
    let (mut app, _) = live_app(true);
    app.pane = Pane::Ablations;
    press(&mut app, KeyCode::Char('r'));
    app.drain_active(usize::MAX);
    app.apply_event(TrainEvent::Failed { message: "cannot read train.json".into() });
    assert_eq!(app.view.status, Some(RunStatus::Failed));
    press(&mut app, KeyCode::Char('3'));
    assert_eq!(app.pane, Pane::Gates);
}

#[test]
fn earlier_runs_are_read_from_the_runs_directory() {
    let runs = tempfile::tempdir().unwrap();
    let write_run = |id: &str, events: &[TrainEvent], report: Option<&str>| {
        let dir = runs.path().join(id);
        std::fs::create_dir_all(&dir).unwrap();
        // As the trainer writes it: resolved, with absolute paths.
        let mut config = super::fixture::config().absolutized().unwrap();
        config.ablation = Ablation { contrastive: false, ..Ablation::default() };
        std::fs::write(dir.join("config.toml"), config.to_toml_string()).unwrap();
        let lines: String =
            events.iter().map(|e| format!("{}\n", serde_json::to_string(e).unwrap())).collect();
        std::fs::write(dir.join("events.jsonl"), lines).unwrap();
        if let Some(report) = report {
            std::fs::write(dir.join("report.json"), report).unwrap();
        }
    };
    let ablation = Ablation { contrastive: false, ..Ablation::default() };
    let finished = recorded_run("old-1", ablation, 0.7);
    write_run(
        "old-1",
        &finished,
        Some(
            // As the trainer has always written it, status as a string.
            r#"{"dataset":"AxiOM","labels":["Nervousness"],"multi_label":false,"best_epoch":2,
                "macro_f1":0.731,"weighted_f1":0.74,
                "per_class":[{"label":"Nervousness","precision":1.0,"recall":0.8,"f1":0.9,"support":10}],
                "metrics":{"macro_f1":0.731,"weighted_f1":0.74,"per_class":[],"accuracy":0.75},
                "thresholds":null,"epochs_run":2,"seconds":12.0,"status":"finished"}"#,
        ),
    );
    write_run("old-2", &finished[..30], None);
    // Its last event an hour ago: no longer being written.
    let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    std::fs::File::options()
        .append(true)
        .open(runs.path().join("old-2/events.jsonl"))
        .unwrap()
        .set_modified(hour_ago)
        .unwrap();
    std::fs::create_dir_all(runs.path().join("not-a-run")).unwrap();

    // The dashboard resolves its base config at start (`tui::open_live`), as runs store theirs.
    let mut base = super::fixture::config().absolutized().unwrap();
    base.paths.runs = PathBuf::from(runs.path());
    let mut app = App::live(
        base,
        Box::new(super::fixture::FakeLauncher { launches: Default::default(), keep_open: false }),
    );
    app.scan_runs();
    let ids: Vec<&str> = app.runs.rows.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["old-1", "old-2"]);
    let old1 = &app.runs.rows[0];
    assert_eq!(old1.label, "-contrastive");
    assert_eq!((old1.macro_f1, old1.status), (Some(0.731), RunStatus::Finished));
    assert_eq!(old1.per_class, vec![("Nervousness".to_string(), 0.9)]);
    let old2 = &app.runs.rows[1];
    assert_eq!((old2.status, old2.macro_f1), (RunStatus::Interrupted, Some(0.65)));

    // Same config: one row of repeats until `g` shows them apart; then archive old-2.
    app.pane = Pane::Runs;
    assert_eq!(app.runs_pane.rows(&app.runs).len(), 1);
    press(&mut app, KeyCode::Char('g'));
    assert_eq!(app.runs_pane.rows(&app.runs).len(), 2);
    press(&mut app, KeyCode::Char('j'));
    press(&mut app, KeyCode::Char('a'));
    press(&mut app, KeyCode::Char('n'));
    assert!(runs.path().join("old-2").is_dir(), "anything but y keeps the run");
    press(&mut app, KeyCode::Char('a'));
    press(&mut app, KeyCode::Char('y'));
    assert!(!runs.path().join("old-2").exists());
    assert!(runs.path().join("archive/old-2/events.jsonl").is_file(), "moved, not deleted");
    let ids: Vec<&str> = app.runs.rows.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["old-1"]);
    app.scan_runs();
    assert_eq!(app.runs.rows.len(), 1, "archived runs are not listed again");
}

/// A sweep on a scheduler: another process (or machine) writes a run into the shared runs
/// folder while the dashboard is open. Each scan shows what it has appended since — a
/// half-written last line only once it is whole — until it ends with its report's numbers.
#[test]
fn runs_written_by_other_processes_are_followed_until_they_end() {
    use std::io::Write;
    let runs = tempfile::tempdir().unwrap();
    let mut base = super::fixture::config().absolutized().unwrap();
    base.paths.runs = PathBuf::from(runs.path());
    let mut app = App::live(
        base,
        Box::new(super::fixture::FakeLauncher { launches: Default::default(), keep_open: false }),
    );
    assert!(!app.scan_runs(), "an empty folder changes nothing");

    let dir = runs.path().join("remote-1");
    std::fs::create_dir_all(&dir).unwrap();
    let events = recorded_run("remote-1", Ablation::default(), 0.7);
    let line = |event: &TrainEvent| format!("{}\n", serde_json::to_string(event).unwrap());
    let first_epoch =
        events.iter().position(|e| matches!(e, TrainEvent::Epoch(_))).expect("an epoch");
    let append = |text: &str| {
        let mut file =
            std::fs::File::options().create(true).append(true).open(dir.join("events.jsonl"));
        file.as_mut().unwrap().write_all(text.as_bytes()).unwrap();
    };
    let row = |app: &App| app.runs.get("remote-1").cloned().expect("the run is listed");

    // Training, before its first epoch ends.
    append(&events[..first_epoch].iter().map(line).collect::<String>());
    assert!(app.scan_runs());
    assert_eq!((row(&app).status, row(&app).macro_f1), (RunStatus::Running, None));

    // The epoch's event arrives in two writes: nothing of it until its line is whole.
    let epoch_line = line(&events[first_epoch]);
    let (head, tail) = epoch_line.split_at(epoch_line.len() / 2);
    append(head);
    assert!(!app.scan_runs(), "half a line is not an event yet");
    append(tail);
    assert!(app.scan_runs());
    assert_eq!((row(&app).status, row(&app).macro_f1), (RunStatus::Running, Some(0.65)));
    assert!(!app.scan_runs(), "nothing new");

    // It ends; its report holds the best epoch's numbers.
    append(&events[first_epoch + 1..].iter().map(line).collect::<String>());
    std::fs::write(
        dir.join("report.json"),
        r#"{"dataset":"AxiOM","labels":["Nervousness"],"multi_label":false,"best_epoch":1,
            "macro_f1":0.7,"weighted_f1":0.733,"per_class":[],
            "metrics":{"macro_f1":0.7,"weighted_f1":0.733,"per_class":[],"accuracy":0.75},
            "thresholds":null,"epochs_run":2,"seconds":24.0,"status":"finished"}"#,
    )
    .unwrap();
    assert!(app.scan_runs());
    let ended = row(&app);
    assert_eq!(
        (ended.status, ended.macro_f1, ended.weighted_f1),
        (RunStatus::Finished, Some(0.7), Some(0.733))
    );
    assert_eq!(ended.seconds, Some(24.0));
    assert!(!app.scan_runs());
    assert_eq!(app.runs.rows.len(), 1);
}

#[test]
fn a_broken_report_is_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("events.jsonl"), "").unwrap();
    std::fs::write(dir.path().join("report.json"), "{\"macro_f1\": \"high\"}").unwrap();
    let err = crate::tui::load_run(dir.path()).unwrap_err();
    assert!(format!("{err:#}").contains("report.json"), "{err:#}");
}

#[test]
fn a_confusion_cell_opens_errors_filtered_to_exactly_its_samples() {
    let mut app = replayed_app();
    app.pane = Pane::Confusion;
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.pane, Pane::Confusion, "the diagonal holds no errors");
    press(&mut app, KeyCode::Right);
    press(&mut app, KeyCode::Right);
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.pane, Pane::Errors);
    let items = app.view.misclassified();
    let shown: Vec<&str> =
        app.errors.visible(items).iter().map(|&i| items[i].sample_id.as_str()).collect();
    assert_eq!(shown, ["ax-103"], "Lack of Worry Control → Excessive Worry");
    press(&mut app, KeyCode::Char('7'));
    press(&mut app, KeyCode::Down); // Excessive Worry → Excessive Worry: the diagonal
    press(&mut app, KeyCode::Left); // Excessive Worry → Lack of Worry Control: none listed
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.pane, Pane::Errors);
    assert!(app.errors.visible(app.view.misclassified()).is_empty());
    press(&mut app, KeyCode::Char('c'));
    assert_eq!(app.errors.visible(app.view.misclassified()).len(), 4, "c clears the cell");
}
