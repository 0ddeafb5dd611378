#!/usr/bin/env bash
# One command on a fresh machine: installs what is missing, builds, and opens the dashboard
# on the bundled demo (assets/demo, offline MiniLM, CPU) with a training run already going.
# Extra arguments go to `memescope train` (e.g. --set ablation.moe=false).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec cargo run --release --locked --quiet -- train --config configs/demo.toml "$@"
