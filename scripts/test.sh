#!/usr/bin/env bash
# The whole test suite, as CI runs it: setup, unit + integration tests, dashboard e2e in tmux.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo test --locked
