#!/usr/bin/env bash
# Key-press → redraw latency of the dashboard while a run trains (not run in CI).
#
#   scripts/dashboard_latency.sh [CONFIG] [TRIALS]   (default configs/axiom-text.toml, 20)
#   IDLE=1 scripts/dashboard_latency.sh ...           the same with no run training (baseline)
#
# Starts `memescope train CONFIG` (the dashboard) in a detached tmux session, waits until
# training steps arrive, then TRIALS times presses `?` and polls `tmux capture-pane` until
# the help overlay is on screen, and presses Esc and polls until it is gone. Prints each
# latency in ms, then the median, the 99th percentile and the maximum, with the load
# average before and after (the measurement means little on a busy machine). The figure includes tmux's own delivery
# and capture time (a few ms per poll), so it is an upper bound on the app's latency.
# Needs tmux and a release binary (MEMESCOPE_BIN overrides target/release/memescope).
set -euo pipefail

cd "$(dirname "$0")/.."
CONFIG=${1:-configs/axiom-text.toml}
TRIALS=${2:-20}
BIN=${MEMESCOPE_BIN:-${CARGO_TARGET_DIR:-target}/release/memescope}
SESSION="memescope-latency-$$"
WORK=$(mktemp -d)

command -v tmux >/dev/null || { echo "tmux is not installed" >&2; exit 2; }
[[ -x $BIN ]] || { echo "no binary at $BIN (cargo build --release)" >&2; exit 2; }

cleanup() {
    tmux kill-session -t "$SESSION" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

screen() { tmux capture-pane -p -t "$SESSION"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# Polls until the screen does (or, with "!", does not) match PATTERN; prints elapsed ms.
until_screen() {
    local negate=$1 pattern=$2 started=$3 deadline=$(($3 + 5000))
    while (($(now_ms) < deadline)); do
        if screen | grep -q -- "$pattern"; then
            [[ $negate == "" ]] && { echo $(($(now_ms) - started)); return; }
        else
            [[ $negate == "!" ]] && { echo $(($(now_ms) - started)); return; }
        fi
    done
    echo "timeout"
}

if [[ -n ${IDLE:-} ]]; then
    tmux new-session -d -s "$SESSION" -x 120 -y 40 \
        "$BIN tui --config $CONFIG --set paths.runs=$WORK/runs; sleep 60"
    sleep 3
else
    tmux new-session -d -s "$SESSION" -x 120 -y 40 \
        "$BIN train --config $CONFIG --set paths.runs=$WORK/runs --set train.epochs=1000 --set train.patience=0; sleep 60"
    # Training has started once the header shows a step count; give it a few seconds more.
    deadline=$((SECONDS + 600))
    until screen | grep -Eq 'step [0-9]+|epoch [0-9]+'; do
        ((SECONDS < deadline)) || { echo "training did not start"; screen; exit 1; }
        sleep 0.5
    done
    sleep 3
fi

HELP='any key closes it'
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
latencies=()
for ((i = 1; i <= TRIALS; i++)); do
    started=$(now_ms)
    tmux send-keys -t "$SESSION" '?'
    shown=$(until_screen "" "$HELP" "$started")
    started=$(now_ms)
    tmux send-keys -t "$SESSION" Escape
    hidden=$(until_screen "!" "$HELP" "$started")
    echo "trial $i: show ${shown} ms, hide ${hidden} ms"
    latencies+=("$shown" "$hidden")
    sleep 0.2
done
screen | grep -Eo 'step [0-9]+|epoch [0-9]+' | head -2 | tr '\n' ' ' || true
echo
echo "load average (1, 5, 15 min): before $load_before, after $(cut -d' ' -f1-3 /proc/loadavg)"
timeouts=$(printf '%s\n' "${latencies[@]}" | grep -c timeout || true)
printf '%s\n' "${latencies[@]}" | grep -v timeout | sort -n | awk -v timeouts="$timeouts" '
    { v[NR] = $1 }
    END {
        if (!NR) exit
        p99 = v[int(0.99 * NR + 0.999999)]
        printf "median %d ms, p99 %d ms, max %d ms over %d redraws (%d timed out)\n",
            v[int((NR + 1) / 2)], p99, v[NR], NR, timeouts
    }'
