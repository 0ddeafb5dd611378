#!/usr/bin/env bash
# Kept for older instructions and scripts: the same as `./scripts/fetch-model.sh minilm`.
exec "$(dirname "$0")/fetch-model.sh" minilm
