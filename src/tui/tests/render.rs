//! What each pane shows, drawn on a test terminal from the recorded run.

use crossterm::event::{KeyCode, KeyEvent};

use super::fixture::{recorded_run, render, replayed_app};
use crate::config::Ablation;
use crate::events::TrainEvent;
use crate::tui::{App, Pane};

fn press(app: &mut App, code: KeyCode) {
    app.handle_key(KeyEvent::from(code));
}

fn type_text(app: &mut App, text: &str) {
    text.chars().for_each(|c| press(app, KeyCode::Char(c)));
}

fn line_with<'a>(screen: &'a str, needle: &str) -> &'a str {
    screen.lines().find(|line| line.contains(needle)).unwrap_or_else(|| {
        panic!("no line contains {needle:?} in:\n{screen}");
    })
}

#[test]
fn tab_bar_names_every_pane() {
    let mut app = replayed_app();
    let screen = render(&mut app, 100, 30);
    let tabs = screen.lines().next().unwrap();
    for name in ["1 Loss", "2 F1", "3 Gates", "4 Errors", "5 Ablations", "6 Runs"] {
        assert!(tabs.contains(name), "{name} missing from {tabs:?}");
    }
}

#[test]
fn loss_pane_shows_latest_losses_and_components_on_request() {
    let mut app = replayed_app();
    let screen = render(&mut app, 120, 40);
    // The last step is 40: loss 1.8 - 0.8 = 1.000; validation of the last epoch 0.900.
    assert!(screen.contains("train loss 1.000"), "{screen}");
    assert!(screen.contains("val loss 0.900 @ epoch 1"), "{screen}");
    assert!(screen.contains("train (EMA)") && screen.contains("validation"), "{screen}");
    assert!(!screen.contains("classification"), "components hidden by default:\n{screen}");

    press(&mut app, KeyCode::Char('c'));
    let screen = render(&mut app, 120, 40);
    assert!(screen.contains("classification"), "{screen}");
    assert!(screen.contains("contrastive_text_image"), "{screen}");
    assert!(screen.contains("components on"), "{screen}");

    press(&mut app, KeyCode::Char('l'));
    let screen = render(&mut app, 120, 40);
    assert!(screen.contains("Learning rate") && screen.contains("lr 2.50e-5"), "{screen}");
    assert!(!screen.contains("train (EMA)"), "the schedule replaces the loss:\n{screen}");
    assert!(screen.contains("1.1e-3") || screen.contains("1.0e-3"), "{screen}");
}

#[test]
fn f1_pane_shows_latest_scores_deltas_and_best_epoch() {
    let mut app = replayed_app();
    app.pane = Pane::F1;
    let screen = render(&mut app, 100, 30);
    // Macro F1 went 0.650 → 0.712; weighted 0.680 → 0.745.
    let summary = line_with(&screen, "macro F1");
    assert!(summary.contains("macro F1 0.712 (+0.062)"), "{summary}");
    assert!(summary.contains("weighted F1 0.745 (+0.065)"), "{summary}");
    assert!(screen.contains("this is the best epoch"), "{screen}");
    // Nervousness went 0.750 → 0.800.
    let row = line_with(&screen, "Nervousness");
    assert!(row.contains("0.800") && row.contains("+0.050"), "{row}");
    assert!(row.contains('█'), "a bar per class: {row}");
}

#[test]
fn gates_pane_flags_collapsed_expert_and_routing() {
    let mut app = replayed_app();
    app.pane = Pane::Gates;
    let screen = render(&mut app, 100, 30);
    let e3 = line_with(&screen, "E3 ");
    assert!(e3.contains("0.020") && e3.contains("COLLAPSED"), "{e3}");
    assert!(!line_with(&screen, "E0 ").contains("COLLAPSED"), "{screen}");
    // Even classes route to expert 0, odd ones to expert 1.
    assert!(line_with(&screen, "Nervousness").contains("→ E0"), "{screen}");
    assert!(line_with(&screen, "Lack of Worry Control").contains("→ E1"), "{screen}");
}

#[test]
fn gates_pane_says_moe_off_without_gate_data() {
    let mut app = App::watch("/nonexistent/runs/run-b".into());
    let ablation = Ablation { moe: false, ..Ablation::default() };
    recorded_run("run-b", ablation, 0.7).into_iter().for_each(|e| app.apply_event(e));
    app.pane = Pane::Gates;
    let screen = render(&mut app, 100, 30);
    assert!(screen.contains("MoE off"), "{screen}");
}

#[test]
fn errors_pane_lists_filters_and_opens_details() {
    let mut app = replayed_app();
    app.pane = Pane::Errors;
    let screen = render(&mut app, 120, 30);
    assert!(screen.contains("4/4 shown"), "{screen}");
    // Most confident mistake first, under the cursor.
    let selected = line_with(&screen, "▶");
    assert!(
        selected.contains("0.91") && selected.contains("Nervousness → Excessive Worry"),
        "{selected}"
    );
    assert!(screen.contains("figurative/sarcastic (heuristic"), "{screen}");

    press(&mut app, KeyCode::Char('/'));
    type_text(&mut app, "world");
    press(&mut app, KeyCode::Enter);
    let screen = render(&mut app, 120, 30);
    assert!(screen.contains("1/4 shown"), "{screen}");
    assert!(line_with(&screen, "▶").contains("Impending Doom → Restlessness"), "{screen}");

    press(&mut app, KeyCode::Enter);
    let screen = render(&mut app, 120, 30);
    assert!(screen.contains("ax-102 (Esc: back)"), "{screen}");
    assert!(
        screen.contains("Impending Doom (0.07)") && screen.contains("Restlessness (0.64)"),
        "{screen}"
    );
    assert!(screen.contains("no image"), "an unreadable image path says so:\n{screen}");

    press(&mut app, KeyCode::Esc);
    let screen = render(&mut app, 120, 30);
    assert!(!screen.contains("Esc: back") && screen.contains("1/4 shown"), "{screen}");
}

#[test]
fn errors_detail_shows_reasoning_and_figurative_filter() {
    let mut app = replayed_app();
    app.pane = Pane::Errors;
    press(&mut app, KeyCode::Char('f'));
    let screen = render(&mut app, 120, 30);
    // "me when" is a text cue; ax-103's reasoning calls it ironic; the others have neither.
    assert!(screen.contains("2/4 shown"), "{screen}");
    press(&mut app, KeyCode::Char('j'));
    press(&mut app, KeyCode::Enter);
    let screen = render(&mut app, 120, 30);
    assert!(screen.contains("ax-103") && screen.contains("reasoning:"), "{screen}");
    assert!(screen.contains("rumination"), "{screen}");
    assert!(screen.contains("(heuristic), from the reasoning: “ironic”"), "{screen}");
    press(&mut app, KeyCode::Esc);
    press(&mut app, KeyCode::Char('k'));
    press(&mut app, KeyCode::Enter);
    let screen = render(&mut app, 120, 30);
    assert!(screen.contains("from the text: “me when”"), "{screen}");
}

#[test]
fn errors_pane_filters_by_true_and_predicted_class() {
    let mut app = replayed_app();
    app.pane = Pane::Errors;
    press(&mut app, KeyCode::Char('p'));
    press(&mut app, KeyCode::Char('p'));
    press(&mut app, KeyCode::Char('p')); // predicted: Excessive Worry
    let screen = render(&mut app, 120, 30);
    assert!(
        screen.contains("predicted(p): Excessive Worry") && screen.contains("2/4 shown"),
        "{screen}"
    );
    press(&mut app, KeyCode::Char('t')); // true: Nervousness
    let screen = render(&mut app, 120, 30);
    assert!(screen.contains("1/4 shown"), "{screen}");
    press(&mut app, KeyCode::Char('c'));
    assert!(render(&mut app, 120, 30).contains("4/4 shown"));
}

#[test]
fn ablations_pane_shows_checkboxes_and_next_run_label() {
    let (mut app, _) = super::fixture::live_app(false);
    app.pane = Pane::Ablations;
    let screen = render(&mut app, 100, 30);
    assert!(screen.contains("[x] image") && screen.contains("[ ] figurative"), "{screen}");
    assert!(screen.contains("Next run: base"), "{screen}");
    for _ in 0..4 {
        press(&mut app, KeyCode::Char('j'));
    }
    press(&mut app, KeyCode::Char(' '));
    let screen = render(&mut app, 100, 30);
    assert!(screen.contains("[ ] moe") && screen.contains("Next run: -moe"), "{screen}");
    assert!(line_with(&screen, "] moe").contains('»'), "cursor on moe:\n{screen}");
}

#[test]
fn an_invalid_value_is_refused_inline_with_the_config_message() {
    let (mut app, launches) = super::fixture::live_app(false);
    app.pane = Pane::Ablations;
    let fusion_dim = crate::tui::next_run::KNOBS.iter().position(|k| *k == "model.fusion_dim");
    for _ in 0..crate::config::ABLATION_SWITCHES.len() + fusion_dim.unwrap() {
        press(&mut app, KeyCode::Char('j'));
    }
    press(&mut app, KeyCode::Enter);
    for _ in 0..3 {
        press(&mut app, KeyCode::Backspace);
    }
    type_text(&mut app, "250");
    press(&mut app, KeyCode::Enter);
    let screen = render(&mut app, 120, 40);
    assert!(screen.contains("Refused: model.fusion_dim (250) must be divisible"), "{screen}");
    assert!(line_with(&screen, "model.fusion_dim").contains("250▏"), "still editing:\n{screen}");
    press(&mut app, KeyCode::Char('r')); // typed into the editor, not a start
    press(&mut app, KeyCode::Esc);
    press(&mut app, KeyCode::Char('r'));
    let launched = &launches.borrow().configs;
    assert_eq!(launched.len(), 1);
    assert_eq!(launched[0].model.fusion_dim, 256, "the refused value never reaches a run");
    let screen = render(&mut app, 120, 40);
    assert!(line_with(&screen, "model.fusion_dim").contains("256"), "{screen}");
}

#[test]
fn runs_pane_shows_delta_to_baseline_and_compares_two_runs() {
    let mut app = replayed_app();
    let ablation = Ablation { moe: false, ..Ablation::default() };
    recorded_run("run-b", ablation, 0.650).into_iter().for_each(|e| app.apply_event(e));
    app.pane = Pane::Runs;
    press(&mut app, KeyCode::Char('b')); // baseline: run-a
    let screen = render(&mut app, 100, 30);
    let run_b = line_with(&screen, "run-b");
    assert!(
        run_b.contains("-moe") && run_b.contains("0.650") && run_b.contains("-0.062"),
        "{run_b}"
    );
    assert!(run_b.contains("finished") && run_b.contains("24s"), "{run_b}");
    assert!(line_with(&screen, "run-a").contains("base"), "{screen}");

    press(&mut app, KeyCode::Char(' '));
    press(&mut app, KeyCode::Char('j'));
    press(&mut app, KeyCode::Char(' '));
    press(&mut app, KeyCode::Enter);
    let screen = render(&mut app, 100, 30);
    assert!(screen.contains("A run-a") && screen.contains("B run-b"), "{screen}");
    let row = line_with(&screen, "Nervousness");
    assert!(row.contains("0.800") && row.contains("+0.000"), "{row}");
    assert!(line_with(&screen, "macro F1").contains("-0.062"), "{screen}");
    press(&mut app, KeyCode::Esc);
    assert!(render(&mut app, 100, 30).contains("Δ base"));
}

#[test]
fn runs_differing_only_by_seed_share_a_row_with_mean_and_spread() {
    let (mut app, _) = super::fixture::live_app(false);
    super::fixture::start_repeats(&mut app, 3);
    app.pane = Pane::Runs;
    let screen = render(&mut app, 120, 30);
    // The fake runs score 0.70, 0.71 and 0.72.
    let row = line_with(&screen, "base ×3 runs");
    assert!(row.contains("0.710±0.010") && row.contains("run-1 +2"), "{screen}");
    assert!(!screen.contains("seed=43"), "{screen}");
    press(&mut app, KeyCode::Char('g'));
    let screen = render(&mut app, 120, 30);
    assert!(line_with(&screen, "seed=43").contains("0.710"), "{screen}");
    // Sorted by macro F1, best first.
    press(&mut app, KeyCode::Char('o'));
    press(&mut app, KeyCode::Char('o'));
    press(&mut app, KeyCode::Char('O'));
    let screen = render(&mut app, 120, 30);
    let at = |needle: &str| screen.find(needle).unwrap();
    assert!(at("seed=44") < at("seed=43") && at("seed=43") < at("run-1 "), "{screen}");
}

#[test]
fn compare_shows_the_config_difference() {
    let (mut app, _) = super::fixture::live_app(false);
    app.pane = Pane::Ablations;
    press(&mut app, KeyCode::Char('r'));
    app.drain_active(usize::MAX);
    app.ablations.next.set_value("train.lr", "3e-4").unwrap();
    press(&mut app, KeyCode::Char('r'));
    app.drain_active(usize::MAX);
    app.pane = Pane::Runs;
    press(&mut app, KeyCode::Char(' '));
    press(&mut app, KeyCode::Char('j'));
    press(&mut app, KeyCode::Char(' '));
    press(&mut app, KeyCode::Enter);
    let screen = render(&mut app, 120, 40);
    assert!(screen.contains("train.lr: 1e-3 → 3e-4"), "{screen}");
    assert!(screen.contains("A = base vs B = lr=3e-4"), "{screen}");
}

#[test]
fn confusion_pane_shows_counts_and_row_rates() {
    let mut app = replayed_app();
    press(&mut app, KeyCode::Char('7'));
    assert_eq!(app.pane, Pane::Confusion);
    let screen = render(&mut app, 120, 30);
    let row = line_with(&screen, "│Nervousness");
    assert!(row.contains("34  85%") && row.contains("6  15%"), "{screen}");
    assert!(line_with(&screen, "│Impending Doom").matches("0   0%").count() == 4, "{screen}");
}

#[test]
fn confusion_pane_lists_label_counts_and_frequent_mistakes_for_multi_label() {
    let mut app = replayed_app();
    let mut events = recorded_run("run-m", Ablation::default(), 0.6);
    for event in &mut events {
        match event {
            TrainEvent::RunStarted(info) => info.multi_label = true,
            TrainEvent::Epoch(epoch) => {
                epoch.metrics.confusion = None;
                for (i, m) in epoch.misclassified.iter_mut().enumerate() {
                    m.truth = vec![0, 1];
                    m.predicted = if i % 2 == 0 { vec![2] } else { vec![1, 3] };
                }
            }
            _ => {}
        }
    }
    events.into_iter().for_each(|e| app.apply_event(e));
    app.pane = Pane::Confusion;
    let screen = render(&mut app, 120, 30);
    // Nervousness: recall 0.78 of 40 = 31 TP, 9 FN; precision 0.82 → 7 FP.
    assert!(line_with(&screen, "│Nervousness ").contains("31    7     9"), "{screen}");
    // Four listed samples, all missing 0 and 1, two predicting 2, two 1 and 3.
    assert!(screen.contains("2  Nervousness → Excessive Worry"), "{screen}");
    assert!(screen.contains("2  Nervousness + Lack of Worry Control missed"), "{screen}");
    assert!(!screen.contains("Lack of Worry Control → Difficulty"), "1 was predicted:\n{screen}");
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.pane, Pane::Errors);
    assert_eq!(app.errors.visible(app.view.misclassified()).len(), 2);
}

#[test]
fn status_bar_shows_precision_and_gpu_memory_of_a_cuda_run() {
    use crate::events::{DeviceMemory, TrainEvent};
    let mut app = App::watch("/nonexistent/runs/run-g".into());
    for event in &recorded_run("run-g", Ablation::default(), 0.7)[..25] {
        let event = match event.clone() {
            TrainEvent::RunStarted(mut info) => {
                info.device = "cuda".into();
                info.precision = crate::config::Precision::Bf16;
                TrainEvent::RunStarted(info)
            }
            TrainEvent::Step(mut step) => {
                let used_bytes = (12 << 30) + step.global_step as u64 * (1 << 26);
                step.device_memory = Some(DeviceMemory { used_bytes, total_bytes: 140 << 30 });
                TrainEvent::Step(step)
            }
            other => other,
        };
        app.apply_event(event);
    }
    let screen = render(&mut app, 120, 30);
    let status = line_with(&screen, "● running");
    // Step 22's reading (12 GiB + 22 × 64 MiB), not the first one.
    assert!(status.contains("cuda bf16 · GPU 13.4/140.0 GiB"), "{status}");

    // A CPU run shows neither.
    let mut app = App::watch("/nonexistent/runs/run-c".into());
    recorded_run("run-c", Ablation::default(), 0.7)[..25]
        .iter()
        .for_each(|e| app.apply_event(e.clone()));
    let screen = render(&mut app, 120, 30);
    let status = line_with(&screen, "● running");
    assert!(status.contains("· cpu ·") && !status.contains("GPU"), "{status}");
}

#[test]
fn status_bar_shows_progress_and_failures() {
    let mut app = App::watch("/nonexistent/runs/run-c".into());
    recorded_run("run-c", Ablation::default(), 0.7)[..25]
        .iter()
        .for_each(|e| app.apply_event(e.clone()));
    let screen = render(&mut app, 100, 30);
    let status = line_with(&screen, "● running");
    assert!(status.contains("epoch 2/2") && status.contains("step 22/40"), "{status}");
    assert!(status.contains("512 samples/s") && status.contains("ETA 0m10s"), "{status}");
    assert!(status.contains("text-only"), "the recorded run had no images: {status}");
    let narrow = render(&mut app, 80, 24);
    let status = line_with(&narrow, "● running");
    assert!(status.contains("ETA") && status.contains("text-only"), "kept at 80 columns: {status}");
    assert!(line_with(&screen, "cache: text features: hit").contains("?: help"), "{screen}");

    app.apply_event(crate::events::TrainEvent::Failed {
        message: "out of memory on cuda:0".into(),
    });
    let screen = render(&mut app, 100, 30);
    assert!(screen.contains("● failed"), "{screen}");
    assert!(screen.contains("Training failed: out of memory on cuda:0"), "{screen}");
}

#[test]
fn every_pane_renders_at_80x24() {
    let mut app = replayed_app();
    for pane in Pane::ALL {
        app.pane = pane;
        let screen = render(&mut app, 80, 24);
        assert!(screen.lines().next().unwrap().contains("1 Loss"), "{pane:?}:\n{screen}");
        assert!(!screen.contains("too small"), "{pane:?}:\n{screen}");
    }
    app.pane = Pane::Errors;
    press(&mut app, KeyCode::Enter);
    render(&mut app, 80, 24);
}

#[test]
fn narrow_terminal_keeps_names_scores_and_help_whole() {
    let mut app = replayed_app();
    app.pane = Pane::F1;
    let screen = render(&mut app, 80, 24);
    let row = line_with(&screen, "Lack of Worry Control");
    assert!(row.contains("0.620") && row.contains('█'), "bars shrink, names stay:\n{screen}");
    app.pane = Pane::Runs;
    let screen = render(&mut app, 80, 24);
    let row = line_with(&screen, "0.712");
    assert!(row.contains("0.745") && row.contains("finished"), "{screen}");
    press(&mut app, KeyCode::Char('?'));
    let screen = render(&mut app, 80, 24);
    for (key, what) in crate::tui::ui::keys() {
        assert!(line_with(&screen, what).contains(&key), "{key}: {what} cut at 80 columns");
    }
}

#[test]
fn small_terminal_shows_a_message_instead_of_panes() {
    let mut app = replayed_app();
    let screen = render(&mut app, 60, 20);
    assert!(screen.contains("Terminal too small: 60×20"), "{screen}");
    assert!(!screen.contains("1 Loss"), "{screen}");
}

#[test]
fn help_overlay_lists_keys() {
    let mut app = replayed_app();
    press(&mut app, KeyCode::Char('?'));
    let screen = render(&mut app, 100, 30);
    assert!(screen.contains("switch pane") && screen.contains("leave-one-out sweep"), "{screen}");
    assert!(line_with(&screen, "switch pane").contains("1-7, Tab"), "{screen}");
    press(&mut app, KeyCode::Char('x'));
    assert!(!render(&mut app, 100, 30).contains("switch pane"), "any key closes the help");
}

#[test]
fn errors_detail_draws_a_readable_image() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ax-101.png");
    // Rows differ in colour, so half blocks draw '▄' rather than a blank with a background.
    image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([(x * 4) as u8, (y * 5) as u8, 200]))
        .save(&path)
        .unwrap();
    let mut app = App::watch("/nonexistent/runs/run-d".into());
    for mut event in recorded_run("run-d", Ablation::default(), 0.7) {
        if let crate::events::TrainEvent::Epoch(epoch) = &mut event {
            epoch.misclassified.iter_mut().for_each(|m| m.image = Some(path.clone()));
        }
        app.apply_event(event);
    }
    app.pane = Pane::Errors;
    press(&mut app, KeyCode::Enter);
    render(&mut app, 100, 30);
    let screen = render(&mut app, 100, 30);
    assert!(!screen.contains("no image"), "{screen}");
    // Half blocks (the test picker) draw two pixel rows per cell with '▄'.
    assert!(line_with(&screen, "OCR text").contains('▄'), "{screen}");
}
