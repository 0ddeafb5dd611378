#!/usr/bin/env bash
# Proves that the CUDA build compiles and links without a GPU: sets up the toolkit
# (scripts/cuda-toolkit.sh), then builds the release binary and every test with
# `--features cuda`, tests/cuda.rs included. Prints how long each step took.
#
# Running the CUDA tests needs a GPU: scripts/gpu-check.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

start=$SECONDS
eval "$(scripts/cuda-toolkit.sh)"
toolkit=$((SECONDS - start))

start=$SECONDS
cargo build --locked --release --features cuda
build=$((SECONDS - start))

# The tests in the release profile too: the dev profile would build every dependency a
# second time, candle's CUDA kernels included (nvcc is most of this script's time).
start=$SECONDS
cargo test --locked --release --features cuda --no-run
tests=$((SECONDS - start))

echo "check-cuda: toolkit ${toolkit} s, release build ${build} s, test build ${tests} s"
