#!/usr/bin/env bash
# End-to-end check of the dashboard as a user sees it: runs the real binary in a detached
# tmux session (100×30), types keys, reads the screen with `tmux capture-pane` and greps it.
# One session walks through issue #4's "Done when":
#
#   `memescope train` opens the dashboard with the run started → loss and per-class F1 move
#   (two epochs' numbers seen) → gate usage → `memescope watch` replays the same macro F1 →
#   misclassified memes with their image (and a missing one) → search → moe and contrastive
#   off and a learning rate typed (an invalid one refused first), a second run labelled by
#   its difference from the base → both compared (config and per class) in Runs → a
#   confusion cell lists its samples in Errors → every pane at 80×24 → quit with
#   confirmation while a sweep trains → the terminal is restored.
#
#   tests/e2e_tmux.sh [CONFIG]        (default tests/fixtures/e2e.toml, the bundled demo)
#
# Needs tmux and a built binary (`cargo build`; MEMESCOPE_BIN overrides its path, e.g. a copy
# when several checkouts share one CARGO_TARGET_DIR and overwrite each other's). Waits poll
# the screen with a timeout (E2E_TIMEOUT seconds for training, default 600); E2E_EPOCHS sets
# train.epochs (default 5: on a loaded machine the loss step can outlast the first two
# epochs, and the F1 step must still see two more). On failure the step, the screen and the
# log tail are printed.
set -euo pipefail

cd "$(dirname "$0")/.."
CONFIG=${1:-tests/fixtures/e2e.toml}
BIN=${MEMESCOPE_BIN:-${CARGO_TARGET_DIR:-target}/debug/memescope}
TRAIN_TIMEOUT=${E2E_TIMEOUT:-600}
EPOCHS=${E2E_EPOCHS:-5}
SESSION="memescope-e2e-$$"
WORK=$(mktemp -d)
RUNS="$WORK/runs"
# The tmux window the helpers below read and type into.
WINDOW=dash

command -v tmux >/dev/null || { echo "e2e: tmux is not installed" >&2; exit 2; }
[[ -x $BIN ]] || { echo "e2e: no binary at $BIN (run cargo build)" >&2; exit 2; }
[[ -f $CONFIG ]] || { echo "e2e: no config at $CONFIG" >&2; exit 2; }
((EPOCHS >= 2)) || { echo "e2e: E2E_EPOCHS must be at least 2" >&2; exit 2; }

# What the window shows. tmux can be read halfway through a redraw (CI once caught epoch 1's
# header above the previous frame's empty table), so a screen counts only once two reads
# 20 ms apart agree; a screen that never settles within half a second is returned as is.
# Runs in a subshell that ignores SIGPIPE: `screen | grep -q` stops reading at the first
# match, and under pipefail a writer killed by SIGPIPE would fail the whole check.
screen() (
    trap '' PIPE
    now=$(tmux capture-pane -p -t "$SESSION:$WINDOW") || exit
    for _ in {1..25}; do
        sleep 0.02
        next=$(tmux capture-pane -p -t "$SESSION:$WINDOW") || exit
        [[ $next == "$now" ]] && break
        now=$next
    done
    printf '%s\n' "$now" 2>/dev/null || true
)
keys() { tmux send-keys -t "$SESSION:$WINDOW" "$@"; }
step() { echo "e2e: $*"; }

cleanup() {
    tmux kill-session -t "$SESSION" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
    echo "e2e FAILED: $*" >&2
    echo "----- screen of window '$WINDOW' -----" >&2
    screen >&2 || true
    echo "----- $RUNS/memescope.log (tail) -----" >&2
    tail -n 30 "$RUNS/memescope.log" >&2 2>/dev/null || true
    exit 1
}

# wait_for PATTERN SECONDS WHAT: polls the screen until it matches the extended regex.
wait_for() {
    local pattern=$1 timeout=$2 what=$3 deadline=$((SECONDS + $2))
    while ((SECONDS < deadline)); do
        screen | grep -Eq -- "$pattern" && return 0
        sleep 0.1
    done
    fail "waited ${timeout}s for $what (/$pattern/)"
}

# After a key: the screen must show the change promptly.
expect_now() { wait_for "$1" 10 "$2"; }

# expect_gone PATTERN WHAT: the screen stops matching promptly.
expect_gone() {
    local deadline=$((SECONDS + 10))
    while screen | grep -Eq -- "$1"; do
        ((SECONDS < deadline)) || fail "$2 (/$1/ still on screen)"
        sleep 0.1
    done
}

# The text of the first match of the extended regex on the screen (empty when none).
grab() { screen | grep -Eo -- "$1" | head -n 1 || true; }

LABELS='Nervousness|Lack of Worry Control|Excessive Worry|Difficulty Relaxing|Restlessness|Impending Doom|Lack of Interest|Feeling Down|Eating Disorder|Sleeping Disorder|Concentration Problem|Low Self-Esteem|Self-Harm'
# The status bar (the only line starting with ●) once the shown run has ended.
ENDED='^● (finished|stopped|failed)'

tmux new-session -d -s "$SESSION" -n dash -x 100 -y 30 "env PS1='e2e\$ ' bash --norc --noprofile"
keys "$BIN train --config $CONFIG --set 'paths.runs=\"$RUNS\"' --set train.epochs=$EPOCHS; echo EXIT=\$?" Enter

step "memescope train opens the dashboard with the run started"
wait_for '1 Loss.*2 F1.*3 Gates.*4 Errors.*5 Ablations.*6 Runs' 60 "the tab bar"
wait_for '^● (preparing|running)' 30 "the run to be started"

step "the loss moves"
deadline=$((SECONDS + TRAIN_TIMEOUT))
first_loss=$(grab 'train loss [0-9.]+')
until [[ -n $first_loss && $(grab 'train loss [0-9.]+') != "$first_loss" ]]; do
    ((SECONDS < deadline)) || fail "the train loss did not change within ${TRAIN_TIMEOUT}s"
    screen | grep -Eq "$ENDED" && fail "the run ended before the loss was seen moving"
    sleep 0.1
    [[ -n $first_loss ]] || first_loss=$(grab 'train loss [0-9.]+')
done
echo "     $first_loss, then $(grab 'train loss [0-9.]+')"

step "per-class F1 moves: two epochs' numbers seen"
keys 2
# Keeps the per-class rows of every epoch the F1 pane shows until the run ends.
declare -A per_class=()
while :; do
    now=$(screen)
    epoch=$(grep -Eo 'epoch [0-9]+  macro F1 [0-9.]+' <<<"$now" | head -n 1 || true)
    [[ -n $epoch ]] && per_class[$epoch]=$(grep -E -- "^│($LABELS) " <<<"$now" || true)
    grep -Eq "$ENDED" <<<"$now" && break
    ((SECONDS < deadline)) || fail "the first run did not end within ${TRAIN_TIMEOUT}s"
    sleep 0.1
done
screen | grep -Eq '^● finished' || fail "the first run should have finished"
seen=$(printf '%s\n' "${!per_class[@]}" | sort -t' ' -k2n)
sed 's/^/     /' <<<"$seen"
(($(wc -l <<<"$seen") >= 2)) || fail "only one epoch was seen on the F1 pane (epochs too fast?)"
first=$(head -n 1 <<<"$seen")
last=$(tail -n 1 <<<"$seen")
[[ -n ${per_class[$first]} ]] || fail "no per-class rows under $first"
[[ ${per_class[$first]} != "${per_class[$last]}" ]] || fail "per-class F1 identical in $first and $last"
# The latest epoch is compared with the one before it, per class.
screen | grep -Eq "^│($LABELS) .* [+-][0-9]\.[0-9]{3} " || fail "no per-class Δ F1 against the previous epoch"
live_f1=$(grab 'epoch [0-9]+  macro F1 [0-9.]+')

step "gate usage"
keys 3
expect_now '^│E0 .* [0-9]\.[0-9]{3}' "a bar per expert"
expect_now 'routes to' "the per-class routing table"
expect_now "^│($LABELS) .*→ E[0-9]" "a class routed to an expert"

step "memescope watch replays the first run with the same macro F1 ($live_f1)"
run_dir=$(find "$RUNS" -mindepth 1 -maxdepth 1 -type d | head -n 1)
[[ -f $run_dir/events.jsonl ]] || fail "no run directory with events.jsonl in $RUNS"
tmux new-window -d -t "$SESSION" -n watch "env PS1='e2e\$ ' bash --norc --noprofile"
tmux resize-window -t "$SESSION:watch" -x 100 -y 30
WINDOW=watch
keys "$BIN watch $run_dir; echo EXIT=\$?" Enter
wait_for '1 Loss.*6 Runs' 60 "the watch dashboard"
keys 2
wait_for "$live_f1" 30 "the replayed F1 pane to show '$live_f1'"
expect_now '^● finished' "the replayed run to be finished"
keys q
expect_now 'EXIT=0' "watch to quit with status 0"
tmux kill-window -t "$SESSION:watch"
WINDOW=dash

step "misclassified memes with their image"
keys 4
expect_now '[0-9]+/[0-9]+ shown' "the Errors filter line"
expect_now "$LABELS" "a label name in the Errors list"
keys Enter
expect_now '[A-Z]+-[0-9]+ \(Esc: back\)' "the detail view of the first error"
expect_now '┌image' "the image panel"
# Half blocks are how the image is drawn in tmux: a rendered image is rows of them.
image_rows() { screen | grep -Ec '▀|▄' || true; }
(($(image_rows) >= 5)) || fail "the image panel shows no image"
sample=$(grab '[A-Z]+-[0-9]+ \(Esc: back\)' | cut -d' ' -f1)
keys Escape
expect_gone 'Esc: back' "Esc should close the detail view"

step "search with / finds $sample"
keys / "$sample"
expect_now "search\\(/\\): /$sample" "the search being typed"
keys Enter
expect_now "search\\(/\\): \"$sample\"" "the search applied"
expect_now '^1/[0-9]+ shown' "exactly one error matching $sample"
keys Enter
expect_now "$sample \\(Esc: back\\)" "the detail view of $sample"
(($(image_rows) >= 5)) || fail "$sample's image is not drawn"

step "the broken demo images say why there is no image"
# DEMO-013 has no file, DEMO-077 a corrupt one (the loader may mask it, or the panel fails to
# decode it); each is checked when it is among the validation samples the model got wrong.
for broken in DEMO-013:'no image: the sample has none' DEMO-077:'no image: (cannot decode|the sample has none)'; do
    id=${broken%%:*} reason=${broken#*:}
    keys / "$id" Enter
    expect_now "search\\(/\\): \"$id\"" "the search for $id"
    if screen | grep -q '^0/'; then
        echo "     $id is not among the errors (a training sample, or classified correctly)"
        continue
    fi
    keys Enter
    expect_now "$id \\(Esc: back\\)" "the detail view of $id"
    expect_now "$reason" "'$reason' in $id's image panel"
    echo "     $id: $(grab "$reason")"
done
keys Escape
expect_gone 'Esc: back' "Esc should close the detail view"
keys c
expect_now 'search\(/\): —' "c to clear the search"

step "moe and contrastive off, second run"
keys 5
expect_now '\[x\] moe' "the ablation checkboxes"
keys j j j j Space j Space
expect_now 'Next run: -moe -contrastive' "moe and contrastive toggled off"
expect_now '\[ \] moe' "the moe checkbox cleared"
expect_now '\[ \] contrastive ' "the contrastive checkbox cleared"

step "a value typed for the next run: an invalid one is refused, a valid one kept"
# From contrastive (row 5) down to train.lr, the first value after the 10 switches.
keys j j j j j Enter
expect_now 'train\.lr +[0-9.e-]+▏' "the train.lr editor"
for _ in 1 2 3 4 5 6 7 8; do keys BSpace; done
keys a b c Enter
expect_now 'Refused: .*' "an invalid learning rate refused with the config's message"
echo "     $(grab 'Refused: .*')"
for _ in 1 2 3; do keys BSpace; done
keys 5 e - 4 Enter
expect_gone 'Refused' "the valid value accepted"
expect_now 'Next run: -moe -contrastive lr=5e-4' "the label of the next run"
keys r
expect_now 'Started a run: -moe -contrastive lr=5e-4' "the second run to start"

step "Runs pane compares both runs"
keys 6
expect_now 'macro F1.*weighted F1.*status' "the runs table header"
# Table rows only: the status bar (starting with ●) names a status too.
run_rows() { screen | grep -v '●' | grep -Ec -- "$1" || true; }
until [[ $(run_rows 'finished|stopped|failed') -ge 2 ]]; do
    ((SECONDS < deadline)) || fail "two runs did not end within ${TRAIN_TIMEOUT}s"
    sleep 0.1
done
[[ $(run_rows ' base .*finished') -eq 1 ]] || fail "the base run is not listed as finished"
[[ $(run_rows '-moe -contrastive .*finished') -eq 1 ]] || fail "the -moe -contrastive run is not listed as finished"
keys Space j Space
expect_now '\*.* base ' "the first run marked"
expect_now '\*.* -moe -contrastive ' "the second run marked"
keys Enter
expect_now 'per-class F1: A = base vs B = -moe -contrastive lr=5e-4' "the side-by-side comparison"
expect_now 'train\.lr: [0-9.e-]+ → 5e-4' "the config difference in the comparison"
[[ $(screen | grep -Ec "^│($LABELS) +[0-9]\.[0-9]{3} +[0-9]\.[0-9]{3} +[+-][0-9]\.[0-9]{3}") -ge 6 ]] ||
    fail "the comparison should show both runs' F1 and the difference for every class"
expect_now '^│macro F1 +[0-9]\.[0-9]{3} +[0-9]\.[0-9]{3}' "both macro F1 in the comparison"
keys Escape
expect_now 'macro F1.*weighted F1.*status' "Esc back to the runs table"
keys 3
expect_now 'MoE off: this run has no mixture-of-experts' "the -moe run's Gates pane"

step "a confusion cell lists its samples in Errors"
keys 7
expect_now 'Confusion · epoch [0-9]+' "the confusion matrix"
keys Right Enter
expect_now 'cell: .* → .*\(c clears\)' "Errors filtered to the cell"
echo "     $(grab '[0-9]+/[0-9]+ shown')"
keys c
expect_gone 'cell: ' "c clears the cell filter"

step "every pane at 80×24"
tmux resize-window -t "$SESSION:dash" -x 80 -y 24
expect_now '^ 1 Loss │ 2 F1 │ 3 Gates │ 4 Errors │ 5 Ablations │ 6 Runs │ 7 Confusion' "the tab bar at 80×24"
pane_marks=('train loss' 'macro F1 [0-9]' 'MoE off' '[0-9]+/[0-9]+ shown' 'Next run:' 'finished' 'Confusion · epoch')
for pane in 1 2 3 4 5 6 7; do
    keys "$pane"
    expect_now "${pane_marks[pane - 1]}" "pane $pane's content at 80×24"
    screen | grep -q 'too small' && fail "pane $pane says 'too small' at 80×24"
    screen | head -n 1 | grep -q '1 Loss.*6 Runs' || fail "no tab bar on pane $pane at 80×24"
done
keys 4 Enter
expect_now '┌image' "the Errors detail with its image at 80×24"
# Escape on its own: sent together with the next key it would read as Alt+key.
keys Escape
expect_gone 'Esc: back' "Esc should close the detail view"
keys '?'
expect_now 'list its samples in Errors' "the whole help overlay at 80×24"
keys Escape
expect_gone '┌Keys' "any key closes the help"
# One column less is too small: the check above is not vacuous.
tmux resize-window -t "$SESSION:dash" -x 79 -y 24
expect_now 'Terminal too small: 79×24' "the too-small message at 79×24"
tmux resize-window -t "$SESSION:dash" -x 100 -y 30
expect_now '^ 1 Loss' "the panes back at 100×30"

step "quit while the sweep trains asks for confirmation"
keys 5 s
expect_now '^● (preparing|running)' "the sweep's first run"
keys q
expect_now 'Stop it and quit\? \(y/n\)' "the quit confirmation"
keys n
expect_gone 'Stop it and quit' "n should close the confirmation"
keys q
expect_now 'Stop it and quit\? \(y/n\)' "the quit confirmation again"
keys y

step "terminal restored"
wait_for 'EXIT=0' 30 "the program to exit with status 0"
[[ $(tmux display -p -t "$SESSION:dash" '#{alternate_on}') == 0 ]] || fail "still on the alternate screen"
[[ $(tmux display -p -t "$SESSION:dash" '#{mouse_any_flag}#{mouse_button_flag}#{mouse_sgr_flag}') == 000 ]] ||
    fail "mouse reporting is still on"
[[ $(tmux display -p -t "$SESSION:dash" '#{cursor_flag}') == 1 ]] || fail "the cursor is still hidden"
screen | grep -q 'e2e\$' || fail "no shell prompt after quitting"
keys "stty -a | tr ' ' '\n' | grep -Ex -- '-?(icanon|echo)' | tr '\n' ' '; echo TTY=\$((6 * 7))" Enter
wait_for 'TTY=42$' 10 "the terminal modes"
screen | grep -q '^icanon echo TTY=42$' || fail "the terminal was left in raw mode (expected 'icanon echo')"
echo "e2e: OK"
