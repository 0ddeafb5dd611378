#!/usr/bin/env bash
# The whole test suite, as CI runs it: setup, unit + integration tests, then the dashboard
# end-to-end test driving the real binary in tmux.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/check-msrv.sh
cargo test --locked
cargo build --locked --bin memescope
tests/e2e_tmux.sh tests/fixtures/e2e.toml
