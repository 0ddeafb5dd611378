#!/usr/bin/env bash
# End-to-end check of the dashboard as a user sees it: runs the real binary in a detached
# tmux session (100×30), types keys, reads the screen with `tmux capture-pane` and greps it.
#
#   tests/e2e_tmux.sh [CONFIG]        (default configs/tiny.toml)
#
# Needs tmux and a built binary (`cargo build`; MEMESCOPE_BIN overrides its path). Each
# wait polls the screen with a timeout (E2E_TIMEOUT seconds for training, default 600);
# on failure the screen and the log tail are printed.
set -euo pipefail

cd "$(dirname "$0")/.."
CONFIG=${1:-configs/tiny.toml}
BIN=${MEMESCOPE_BIN:-${CARGO_TARGET_DIR:-target}/debug/memescope}
TRAIN_TIMEOUT=${E2E_TIMEOUT:-600}
SESSION="memescope-e2e-$$"
WORK=$(mktemp -d)
RUNS="$WORK/runs"

command -v tmux >/dev/null || { echo "e2e: tmux is not installed" >&2; exit 2; }
[[ -x $BIN ]] || { echo "e2e: no binary at $BIN (run cargo build)" >&2; exit 2; }
[[ -f $CONFIG ]] || { echo "e2e: no config at $CONFIG" >&2; exit 2; }

screen() { tmux capture-pane -p -t "$SESSION"; }

cleanup() {
    tmux kill-session -t "$SESSION" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
    echo "e2e FAILED: $*" >&2
    echo "----- screen -----" >&2
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
        sleep 0.3
    done
    fail "waited ${timeout}s for $what (/$pattern/)"
}

# After a key: the screen must show the change promptly.
expect_now() {
    local pattern=$1 what=$2
    wait_for "$pattern" 10 "$what"
}

keys() { tmux send-keys -t "$SESSION" "$@"; }

LABELS='Nervousness|Lack of Worry Control|Excessive Worry|Difficulty Relaxing|Restlessness|Impending Doom|Lack of Interest|Feeling Down|Eating Disorder|Sleeping Disorder|Concentration Problem|Low Self-Esteem|Self-Harm'

tmux new-session -d -s "$SESSION" -x 100 -y 30 "env PS1='e2e\$ ' bash --norc --noprofile"
keys "$BIN tui --config $CONFIG --set 'paths.runs=\"$RUNS\"'; echo EXIT=\$?" Enter

echo "e2e: dashboard starts"
wait_for '1 Loss.*2 F1.*3 Gates.*4 Errors.*5 Ablations.*6 Runs' 60 "the tab bar"

echo "e2e: toggle moe off and start a run"
keys 5
expect_now '\[x\] moe' "the ablation checkboxes"
keys j j j j Space
expect_now 'next run: -moe' "moe toggled off"
expect_now '\[ \] moe' "the moe checkbox cleared"
keys r

echo "e2e: wait for the first epoch"
keys 2
wait_for 'macro F1 [0-9]\.[0-9]{3}' "$TRAIN_TIMEOUT" "an epoch's macro F1"
wait_for "$LABELS" 10 "a label name in the F1 table"

echo "e2e: Errors pane and search"
keys 4
expect_now '[0-9]+/[0-9]+ shown' "the Errors filter line"
expect_now "$LABELS" "a label name in the Errors list"
keys / e r
expect_now 'search\(/\): /er' "the search being typed"
keys Enter
expect_now 'search\(/\): "er"' "the search applied"

echo "e2e: second run with all modules on"
keys 5
keys Space
expect_now 'next run: all on' "moe toggled back on"
keys r

echo "e2e: Runs pane lists both runs"
keys 6
expect_now 'macro F1.*weighted F1.*status' "the runs table header"
deadline=$((SECONDS + TRAIN_TIMEOUT))
# Table rows only: the status bar (starting with ●) names a status too.
run_rows() { screen | grep -v '●' | grep -Ec "$1" || true; }
until [[ $(run_rows 'finished|stopped|failed') -ge 2 ]]; do
    ((SECONDS < deadline)) || fail "two runs did not end within ${TRAIN_TIMEOUT}s"
    sleep 0.5
done
screen | grep -Eq -- '-moe' || fail "the -moe run is not listed"
screen | grep -Eq -- 'all on' || fail "the all-on run is not listed"
[[ $(run_rows finished) -ge 2 ]] || fail "both runs should have finished"

echo "e2e: quit while a third run trains asks for confirmation"
keys 5 r q
expect_now 'Stop it and quit\? \(y/n\)' "the quit confirmation"
keys n
sleep 0.5
screen | grep -q 'Stop it and quit' && fail "n should close the confirmation"
keys q
expect_now 'Stop it and quit\? \(y/n\)' "the quit confirmation again"
keys y

echo "e2e: terminal restored"
wait_for 'EXIT=0' 30 "the program to exit with status 0"
[[ $(tmux display -p -t "$SESSION" '#{alternate_on}') == 0 ]] || fail "still on the alternate screen"
screen | grep -q 'e2e\$' || fail "no shell prompt after quitting"
echo "e2e: OK"
