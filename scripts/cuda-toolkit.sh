#!/usr/bin/env bash
# Sets up the CUDA toolkit that `cargo build --features cuda` needs, from NVIDIA's PyPI
# wheels, in a virtual environment of its own under .cuda/ (git-ignored), and prints the
# environment to build with:
#
#     eval "$(scripts/cuda-toolkit.sh)"
#
# Idempotent: a second run only prints the environment. Progress goes to stderr, so
# stdout holds nothing but the `export` lines.
#
# Why these choices (docs/gpu.md has the measurements):
# - One minor version for every nvidia-* wheel: nvcc with another minor's nvvm emits PTX
#   its ptxas rejects, and with another minor's headers it stops ("CUDA compiler and CUDA
#   toolkit headers are incompatible"). pip would otherwise pull the newest nvidia-cuda-crt.
# - CUDA 13.0 by default: candle ships its kernels as PTX, which the GPU driver compiles
#   at start, and a driver only reads the PTX of its own CUDA version or older. 13.0 is
#   what the oldest CUDA 13 driver (R580) reads; a newer toolkit builds a binary that
#   such a driver refuses. MEMESCOPE_CUDA_VERSION=13.4 picks another set.
# - cudarc (candle's CUDA binding) links libcuda.so, the driver's library, which no wheel
#   ships: a link-only stub is generated from cuda.h into lib/stubs. Its soname is
#   libcuda.so.1, so at run time the real driver's library is loaded. Never put lib/stubs
#   on LD_LIBRARY_PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

version="${MEMESCOPE_CUDA_VERSION:-13.0}"
dir="${MEMESCOPE_CUDA_DIR:-$PWD/.cuda}"
venv="$dir/venv-$version"
stamp="$venv/.memescope-ready"
major="${version%%.*}"
minor="${version#*.}"

log() { echo "cuda-toolkit: $*" >&2; }

# cuBLAS and cuRAND number their releases on their own: pinned to CUDA 13.0's; for another
# version, the newest of the same soname (linking needs only that).
if [ "$version" = 13.0 ]; then
  cublas="==13.0.*" curand="==10.4.0.*"
else
  cublas=">=$major,<$((major + 1))" curand=">=10,<11"
fi

if [ ! -e "$stamp" ]; then
  start=$SECONDS
  log "installing CUDA $version wheels into $venv"
  rm -rf "$venv"
  mkdir -p "$dir"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "nvidia-cuda-nvcc==$version.*" "nvidia-nvvm==$version.*" "nvidia-cuda-crt==$version.*" \
    "nvidia-cuda-runtime==$version.*" "nvidia-cuda-nvrtc==$version.*" \
    "nvidia-cuda-cccl==$version.*" "nvidia-cublas$cublas" "nvidia-curand$curand" >&2
  root="$("$venv/bin/python" -c 'import nvidia, os; print(os.path.join(nvidia.__path__[0], "cu'"$major"'"))')"
  # Every wheel must be of the same minor version (see above); cuBLAS and cuRAND aside.
  mixed="$("$venv/bin/pip" list 2>/dev/null | awk -v v="$version" \
    '/^nvidia-(cuda|nvvm)/ && index($2, v ".") != 1 {print $1 " " $2}')"
  if [ -n "$mixed" ]; then
    log "wheels of another CUDA version slipped in: $mixed"
    exit 1
  fi
  # The linker looks for unversioned names; the wheels ship only the sonames.
  for lib in cudart nvrtc cublas cublasLt curand; do
    so="$(cd "$root/lib" && ls "lib$lib.so."* | grep -E "^lib$lib\.so\.[0-9]+$" | head -1)"
    [ -n "$so" ] || { log "lib$lib.so.* missing from $root/lib"; exit 1; }
    ln -sf "$so" "$root/lib/lib$lib.so"
  done
  # Link-only libcuda.so: every cu* entry point that cuda.h declares or aliases (cuXxx_v2).
  mkdir -p "$root/lib/stubs"
  grep -ohE '\bcu[A-Z][A-Za-z0-9_]*\b' "$root/include/cuda.h" | sort -u |
    awk '{print "void " $1 "(void) {}"}' >"$root/lib/stubs/libcuda.c"
  cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$root/lib/stubs/libcuda.so" "$root/lib/stubs/libcuda.c"
  echo "$root" >"$stamp"
  log "ready in $((SECONDS - start)) s"
fi

root="$(cat "$stamp")"
# CUDA_ROOT/CUDA_HOME/CUDA_PATH: cudarc searches $X/lib and $X/lib/stubs; candle-kernels
# finds nvcc on PATH. No GPU here to ask, so the kernels' target is given: 90 = Hopper
# (H100, H200). CUDARC_CUDA_VERSION names the bindings explicitly (cudarc reads nvcc's
# version otherwise, and panics on versions newer than it knows).
cat <<EOF
export CUDA_ROOT="$root"
export CUDA_HOME="$root"
export CUDA_PATH="$root"
export PATH="$root/bin:\$PATH"
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
export CUDARC_CUDA_VERSION="${major}0${minor}0"
EOF
