#!/usr/bin/env bash
# The interop suite on the GPU machine (PyTorch with CUDA, transformers, peft, tokenizers there; no
# apt, no internet): builds lorascope and the interop driver against PyTorch's LibTorch into
# build-gpu/ (scripts/gpu_build.sh, with the vendored .gpu/ from scripts/gpu_vendor.sh), then runs
# scripts/interop.sh on CUDA with that build and the machine's python3. The LibTorch 2.x rebuild
# of check_libtorch2.py is skipped there: build-gpu/ already is one.
#   run(command="bash tests/interop/run_all.sh", carry=[".gpu"])
# The CPU suite (scripts/interop.sh, in CI) is the one that matters; this is the same checks on CUDA.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PATH:/usr/local/cuda/bin" LD_LIBRARY_PATH="$PWD/.gpu/lib:${LD_LIBRARY_PATH:-}"
start=$(date +%s)
bash scripts/gpu_build.sh build-gpu.log lorascope lorascope_interop_driver
echo "run_all: built build-gpu/ in $(( $(date +%s) - start ))s"
LORASCOPE_INTEROP_SKIP_TORCH2=1 LORASCOPE_INTEROP_THREADS=${LORASCOPE_INTEROP_THREADS:-8} \
  bash scripts/interop.sh --device cuda --build build-gpu --python python3 "$@"
