#!/usr/bin/env bash
# Configures and builds build-gpu/ against the GPU machine's PyTorch LibTorch, with the headers and
# libraries of .gpu/ (scripts/gpu_vendor.sh). bench/gpu_bench.sh and tests/interop/run_all.sh both
# call it, so they share one cache with the same options and a warm machine does not rebuild.
# Usage: scripts/gpu_build.sh LOGFILE TARGET...   (keeps going past the first error, then shows them)
# GPU_CMAKE_ARGS: extra configure arguments (e.g. -DLORASCOPE_WITH_NCCL=ON), used when build-gpu/
# is configured the first time.
set -euo pipefail
cd "$(dirname "$0")/.."
log=$1; shift
[ -d .gpu ] || { echo "gpu_build: .gpu/ missing: run scripts/gpu_vendor.sh on the Debian machine and carry .gpu" >&2; exit 2; }
# Torch's CMake config enables the CUDA language: it needs nvcc.
export PATH="$PATH:/usr/local/cuda/bin"
if [ -z "${CUDACXX:-}" ] && command -v nvcc >/dev/null; then export CUDACXX=$(command -v nvcc); fi
prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
gen=(); keep=(-k)
if command -v ninja >/dev/null; then gen=(-G Ninja); keep=(-k 0); fi
if [ ! -f build-gpu/CMakeCache.txt ]; then
  cmake -S . -B build-gpu "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" \
    -DLORASCOPE_VENDOR_DIR="$PWD/.gpu" -DLORASCOPE_BUILD_TESTS=ON -DLORASCOPE_BUILD_BENCH=ON ${GPU_CMAKE_ARGS:-} > "$log" 2>&1 \
    || { tail -40 "$log"; echo "gpu_build: configure failed (log: $log)" >&2; exit 1; }
fi
cmake --build build-gpu -j "$(nproc)" --target "$@" -- "${keep[@]}" >> "$log" 2>&1 \
  || { grep -m30 -A6 -E "error|undefined reference" "$log"; echo "gpu_build: build of $* failed (log: $log)" >&2; exit 1; }
