#!/usr/bin/env bash
# The CUDA build on a machine with an NVIDIA GPU: runs tests/cuda.rs, `memescope bench` on
# the GPU and on the CPU, and a short AxiOM training run (configs/axiom-text.toml) on each
# (on the GPU also in bf16 mixed precision), printing their epoch times side by side. Where
# python3 has PyTorch and transformers, it also times PyTorch on the same GPU work: encoding
# the texts (scripts/bench_pytorch.py) and one fine-tuning epoch from the same weights and
# batches (scripts/bench_finetune_pytorch.py, losses compared); and, with MPNet's config and
# tokenizer, a base-size encoder (random weights of all-mpnet-base-v2's shape, made there by
# transformers: speed only) encoding and fine-tuning, against PyTorch encoding it.
# Finishes within about 9.5 minutes (MEMESCOPE_GPU_CHECK_SECONDS): each step gets what is
# left of that budget, and a step that would not fit is skipped, saying so.
#
#   scripts/gpu-check.sh                 build here (toolkit: scripts/cuda-toolkit.sh), then run
#   scripts/gpu-check.sh --pack DIR      build here and put what a run needs into DIR
#                                        (no GPU needed; for a GPU machine without internet)
#   scripts/gpu-check.sh --prebuilt DIR  run with DIR from --pack: nothing is built
#
# DIR holds: bin.tar.xz (memescope and cuda-tests, tests/cuda.rs), axiom-train.json, MiniLM
# (all-MiniLM-L6-v2/) with its weights rounded to f16 to halve their 87 MB
# (MEMESCOPE_PACK_MODEL=f32 keeps them whole, 0 leaves the model out), and MPNet's config
# and tokenizer without its 438 MB of weights (all-mpnet-base-v2/, where models/ has it).
# At run time the CUDA libraries (cuBLAS, cuRAND, NVRTC, the runtime) come from DIR/lib, the toolkit in .cuda/,
# /usr/local/cuda, or the Python packages of the machine (nvidia/cu13/lib), in that order.
#
# Exits 2, saying so, where no NVIDIA GPU is visible.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
budget=${MEMESCOPE_GPU_CHECK_SECONDS:-570}
begin=$SECONDS

mode=build dir=""
case "${1:-}" in
  --pack) mode=pack dir=${2:?--pack needs a folder} ;;
  --prebuilt) mode=prebuilt dir=${2:?--prebuilt needs a folder} ;;
  "") ;;
  *) echo "usage: $0 [--pack DIR | --prebuilt DIR]" >&2; exit 64 ;;
esac

say() { echo "gpu-check: $*" >&2; }

# Builds the release binary and tests/cuda.rs with CUDA; prints the test binary's path.
build() {
  eval "$(scripts/cuda-toolkit.sh)"
  cargo build --locked --release --features cuda >&2
  cargo test --locked --release --features cuda --test cuda --no-run --message-format=json |
    grep -o '"executable":"[^"]*"' | tail -1 | cut -d'"' -f4
}

target_dir() {
  echo "${CARGO_TARGET_DIR:-$repo/target}"
}

# copy_model_files NAME: models/NAME's config and tokenizer (not its weights) into DIR/NAME,
# what transformers' AutoTokenizer and memescope's loader read beside the weights.
copy_model_files() {
  mkdir -p "$dir/$1"
  cp models/"$1"/{config.json,tokenizer.json,tokenizer_config.json,special_tokens_map.json,vocab.txt} \
    "$dir/$1/"
}

if [ "$mode" = pack ]; then
  tests=$(build)
  mkdir -p "$dir"
  # Stripped and in one archive: the GPU machine's copy of the tree is size-limited (64 MiB
  # for this workplace's device tool). Each binary is ~70 MB stripped, mostly the same
  # CUDA kernels: a dictionary larger than one binary lets xz store the second as
  # references to the first (~11 MB for both instead of ~145 MB).
  mkdir -p "$dir/bin"
  strip -o "$dir/bin/memescope" "$(target_dir)/release/memescope"
  strip -o "$dir/bin/cuda-tests" "$tests"
  tar -C "$dir" -cf - bin | xz -T2 --lzma2=preset=6,dict=192MiB >"$dir/bin.tar.xz"
  rm -rf "$dir/bin"
  cp ../shared/data/axiom/train.json "$dir/axiom-train.json"
  case "${MEMESCOPE_PACK_MODEL:-f16}" in
    0) ;;
    f32 | f16)
      copy_model_files all-MiniLM-L6-v2
      if [ "${MEMESCOPE_PACK_MODEL:-f16}" = f16 ]; then
        python3 scripts/safetensors-f16.py models/all-MiniLM-L6-v2/model.safetensors \
          "$dir/all-MiniLM-L6-v2/model.safetensors"
      else
        cp models/all-MiniLM-L6-v2/model.safetensors "$dir/all-MiniLM-L6-v2/"
      fi
      ;;
    *) say "MEMESCOPE_PACK_MODEL is 0, f16 or f32"; exit 64 ;;
  esac
  if [ -f models/all-mpnet-base-v2/config.json ]; then
    copy_model_files all-mpnet-base-v2
  fi
  du -sh "$dir"/* >&2
  say "packed into $dir; on the GPU machine: scripts/gpu-check.sh --prebuilt $dir"
  exit 0
fi

# --- Is there a GPU at all? (before anything is built or run)
if ! command -v nvidia-smi >/dev/null 2>&1; then
  say "no NVIDIA GPU visible: nvidia-smi is not installed (no NVIDIA driver). This check needs a GPU; scripts/check-cuda.sh builds the CUDA version without one."
  exit 2
fi
if ! gpus=$(nvidia-smi -L 2>&1) || ! grep -q '^GPU ' <<<"$gpus"; then
  say "no NVIDIA GPU visible: nvidia-smi -L says: ${gpus:-nothing}. This check needs a GPU; scripts/check-cuda.sh builds the CUDA version without one."
  exit 2
fi
say "$gpus"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >&2 || true

# --- The binaries
if [ "$mode" = prebuilt ]; then
  dir=$(cd "$dir" && pwd)
  unpacked=$(mktemp -d)
  xz -dc "$dir/bin.tar.xz" | tar -C "$unpacked" -xf -
  bin=$unpacked/bin/memescope tests=$unpacked/bin/cuda-tests
  data=$dir/axiom-train.json
  model=$dir/all-MiniLM-L6-v2
  mpnet_files=$dir/all-mpnet-base-v2
else
  tests=$(build)
  bin=$(target_dir)/release/memescope
  data=../shared/data/axiom/train.json
  model=models/all-MiniLM-L6-v2
  mpnet_files=models/all-mpnet-base-v2
fi
for f in "$bin" "$tests"; do
  [ -x "$f" ] || { say "$f is missing or not executable"; exit 1; }
done

# --- The CUDA libraries the binary was linked against (never the toolkit's lib/stubs:
# libcuda.so.1 must be the driver's).
missing() { ldd "$bin" "$tests" 2>/dev/null | awk '/not found/ {print $1}' | sort -u; }
candidates=("${dir:+$dir/lib}" "$(ls -d "$repo"/.cuda/venv-*/lib/python3*/site-packages/nvidia/cu13/lib 2>/dev/null | head -1 || true)" /usr/local/cuda/lib64)
for python in python3 /opt/torch/.venv/bin/python3; do
  command -v "$python" >/dev/null 2>&1 || continue
  while read -r lib; do candidates+=("$lib"); done < <("$python" - <<'PY' 2>/dev/null || true
import glob, os, site, sys
roots = site.getsitepackages() + [site.getusersitepackages()]
for root in roots:
    for lib in sorted(glob.glob(os.path.join(root, "nvidia", "*", "lib"))):
        print(lib)
PY
)
done
for lib in "${candidates[@]}"; do
  [ -n "$(missing)" ] || break
  [ -n "$lib" ] && [ -d "$lib" ] || continue
  for so in $(missing); do
    if [ -e "$lib/$so" ]; then
      export LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
      say "CUDA libraries from $lib"
      break
    fi
  done
done
if [ -n "$(missing)" ]; then
  say "CUDA libraries not found: $(missing | tr '\n' ' ')(looked in: ${candidates[*]})"
  exit 1
fi

left() { echo $((budget - (SECONDS - begin))); }
declare -A results
# step NAME NEEDED MOST COMMAND...: runs COMMAND for at most MOST seconds and what is left
# of the budget; skips it if less than NEEDED is left.
step() {
  local name=$1 need=$2 most=$3
  shift 3
  local remaining
  remaining=$(left)
  if [ "$remaining" -lt "$need" ]; then
    say "SKIPPED $name: ${remaining} s left of the budget, it needs about ${need} s"
    results[$name]=skipped
    return 0
  fi
  [ "$remaining" -gt "$most" ] && remaining=$most
  say "== $name (at most ${remaining} s)"
  local start=$SECONDS status=0
  timeout --kill-after=5 "$remaining" bash -c '"$@"' "$name" "$@" || status=$?
  results[$name]="exit $status after $((SECONDS - start)) s"
  [ "$status" = 124 ] && results[$name]="TIMED OUT after $((SECONDS - start)) s"
  say "$name: ${results[$name]}"
}

work=$(mktemp -d)
# MEMESCOPE_GPU_CHECK_LOGS=DIR keeps each step's output (JSON, text) there.
keep_logs() {
  [ -n "${MEMESCOPE_GPU_CHECK_LOGS:-}" ] || return 0
  mkdir -p "$MEMESCOPE_GPU_CHECK_LOGS"
  cp "$work"/*.json "$work"/*.txt "$MEMESCOPE_GPU_CHECK_LOGS"/ 2>/dev/null || true
}
trap 'keep_logs; rm -rf "$work" ${unpacked:+"$unpacked"}' EXIT

# 1. tests/cuda.rs, one test at a time (they share the GPU and print their differences).
export MEMESCOPE_MINILM=$model
step "cuda tests" 30 240 "$tests" --test-threads=1 --nocapture

have_model() { [ -f "$model/model.safetensors" ] && [ -f "$data" ]; }
have_model || say "SKIPPED bench and training: $model/model.safetensors or $data absent"

# 2. A short AxiOM training run (2 epochs) on the GPU, in f32 and in bf16 mixed precision,
# and on the CPU; the first GPU run encodes the texts into a cache that the others reuse,
# so that they time training alone. train DEVICE PRECISION
train() {
  "$bin" train --headless --config configs/axiom-text.toml --set "train.device=\"$1\"" \
    --set "train.precision=\"$2\"" \
    --set train.epochs=2 --set train.patience=0 --set "data.train=\"$data\"" \
    --set "text_encoder.model=\"$model\"" --set "paths.cache=\"$work/cache\"" \
    --set "paths.runs=\"$work/runs-$1-$2\"" >"$work/run-$1-$2.txt"
  cat "$work/run-$1-$2.txt"
}
# 3. bench on the GPU and on the CPU, on the same records (encoder included).
bench() {
  "$bin" bench --config configs/axiom-text.toml --device "$1" --epochs 2 --data "$data" \
    --set "text_encoder.model=\"$model\"" --json | tee "$work/bench-$1.json"
}
export bin data model work
export -f train bench
# 4. PyTorch on the same GPU work (where python3 has torch and transformers): encoding the
# bench's texts, and epoch 1 of the fine-tuned config from the same initial weights and
# batches (`bench --finetune-export`), the losses compared by the script.
pytorch_encode() { # MODEL NAME
  python3 scripts/bench_pytorch.py --device cuda --model "$1" --data "$data" --json |
    tee "$work/pytorch-encode-$2.json"
}
finetune() {
  "$bin" bench --config configs/axiom-text.toml --device cuda --finetune-export "$work/ft" \
    --set "data.train=\"$data\"" --set "text_encoder.model=\"$model\"" \
    --set "paths.cache=\"$work/cache\"" --json | tee "$work/finetune-memescope.json"
  python3 scripts/bench_finetune_pytorch.py "$work/ft" --device cuda | tee "$work/finetune.txt"
}
# 5. A base-size encoder: all-mpnet-base-v2's shape with random weights (transformers makes
# them here; the real 438 MB cannot travel to a machine without internet). Speed only:
# encoding and a fine-tuning epoch (top 2 layers), in f32 and bf16, against PyTorch encoding.
mpnet() {
  mkdir -p "$work/mpnet" && cp "$mpnet_files"/* "$work/mpnet/"
  python3 - "$work/mpnet" <<'PY'
import sys, torch
from transformers import MPNetConfig, MPNetModel
torch.manual_seed(0)
MPNetModel(MPNetConfig.from_json_file(sys.argv[1] + "/config.json")).save_pretrained(sys.argv[1])
PY
  for precision in f32 bf16; do
    "$bin" bench --config configs/axiom-mpnet.toml --device cuda --epochs 2 --data "$data" \
      --set "text_encoder.model=\"$work/mpnet\"" --set text_encoder.finetune_layers=2 \
      --set train.encoder_lr=5e-5 --set "train.precision=\"$precision\"" --json |
      tee "$work/bench-mpnet-$precision.json"
  done
  pytorch_encode "$work/mpnet" mpnet
}
export bin data model work mpnet_files
export -f train bench pytorch_encode finetune mpnet
have_torch() { python3 -c 'import torch, transformers, safetensors' 2>/dev/null; }
if have_model; then
  step "train cuda" 60 120 train cuda f32
  step "train cuda bf16" 40 90 train cuda bf16
  step "bench cuda" 45 90 bench cuda
  if have_torch; then
    step "pytorch encode" 30 60 pytorch_encode "$model" minilm
    step "finetune vs pytorch" 40 90 finetune
    if [ -f "$mpnet_files/config.json" ]; then
      step "mpnet" 60 150 mpnet
    else
      say "SKIPPED mpnet: no $mpnet_files/config.json"
    fi
  else
    say "SKIPPED the PyTorch comparisons: python3 lacks torch, transformers or safetensors"
  fi
  step "train cpu" 60 180 train cpu f32
  step "bench cpu" 60 150 bench cpu
fi

# --- Summary: epoch times side by side.
epochs() { # RUN_DIR -> "1: 2.31 s, 2: 2.20 s"
  [ -f "$1/events.jsonl" ] || { echo "no run"; return; }
  python3 - "$1/events.jsonl" <<'PY'
import json, sys
events = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
print(", ".join(f"{e['epoch']}: {e['seconds']:.2f} s" for e in events if e.get("event") == "epoch"))
PY
}
field() { # FILE KEY
  [ -f "$1" ] && grep -o "\"$2\":[^,}]*" "$1" | head -1 | cut -d: -f2 | tr -d '"' || echo "-"
}
echo
echo "== gpu-check summary ($((SECONDS - begin)) s)"
for name in "cuda tests" "train cuda" "train cuda bf16" "bench cuda" "pytorch encode" \
  "finetune vs pytorch" "mpnet" "train cpu" "bench cpu"; do
  printf '%-20s %s\n' "$name" "${results[$name]:-not run}"
done
for run in cuda-f32 cuda-bf16 cpu-f32; do
  printf 'train %-9s  epochs %s\n' "$run" "$(epochs "$(tail -1 "$work/run-$run.txt" 2>/dev/null)")"
done
for run in cuda cpu mpnet-f32 mpnet-bf16; do
  printf 'bench %-10s  device %s, encode %s texts/s, head training %s samples/s, epoch %s s\n' \
    "$run" "$(field "$work/bench-$run.json" device)" \
    "$(field "$work/bench-$run.json" encode_texts_per_s)" \
    "$(field "$work/bench-$run.json" train_samples_per_s)" \
    "$(field "$work/bench-$run.json" epoch_seconds)"
done
for name in minilm mpnet; do
  printf 'pytorch encode %-6s  %s texts/s in file order, %s texts/s sorted by length\n' "$name" \
    "$(field "$work/pytorch-encode-$name.json" file_order_texts_per_s)" \
    "$(field "$work/pytorch-encode-$name.json" sorted_texts_per_s)"
done
if [ -f "$work/finetune.txt" ]; then
  grep -E 'epoch, steps only|speed-up|loss:|tolerance' "$work/finetune.txt" || true
fi
# Fails when a step failed or timed out; a skipped step is reported above, not failed.
for name in "${!results[@]}"; do
  case "${results[$name]}" in "exit 0 "* | skipped) ;; *) exit 1 ;; esac
done
[ "${results["cuda tests"]:-}" != skipped ] || exit 1
