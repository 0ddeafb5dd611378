#!/usr/bin/env bash
# Installs what memescope's tests and demo need on a fresh Debian machine:
# tmux (dashboard end-to-end test), tesseract (OCR), fonts, and the offline MiniLM weights.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v tmux >/dev/null || need+=(tmux)
command -v tesseract >/dev/null || need+=(tesseract-ocr tesseract-ocr-eng)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
  echo "installing ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
./scripts/fetch-model.sh minilm
