#!/usr/bin/env bash
# One command on a fresh machine: installs what is missing, builds, and opens the dashboard
# on the bundled demo (assets/demo, offline MiniLM, CPU). Extra arguments go to `memescope tui`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec cargo run --release --locked --quiet -- tui --config configs/demo.toml "$@"
