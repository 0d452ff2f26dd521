#!/usr/bin/env bash
# The interop proof on the GPU machine, in one command (PyTorch with CUDA, transformers, peft,
# tokenizers, sentencepiece installed there; no internet):
#
#   bash tests/interop/run_all.sh
#
# Prepared here first (this Debian machine), and carried with the device tool's `carry`:
#   bash scripts/gpu_vendor.sh                         # .gpu/: headers, libsentencepiece, PCRE2, googletest
#   /usr/bin/python3 tests/interop/prepare_lines.py    # .interop/lines.txt: Brown + SpamAssassin lines
# i.e. run(command="bash tests/interop/run_all.sh", carry=[".gpu", ".interop"]).
# Builds lorascope (only the CLI) against PyTorch's LibTorch into build-gpu/ (scripts/gpu_build.sh),
# then runs tests/interop/interop.py, which prints a PASS/FAIL table and exits 1 on any FAIL.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
if [ ! -s .interop/lines.txt ]; then
  if [ -d .cache/data ]; then
    python3 tests/interop/prepare_lines.py --data .cache/data --out .interop/lines.txt
  else
    echo "run_all: .interop/lines.txt missing: run tests/interop/prepare_lines.py and carry .interop" >&2
    exit 2
  fi
fi
export LD_LIBRARY_PATH="$root/.gpu/lib:${LD_LIBRARY_PATH:-}"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
start=$(date +%s)
# Same build-gpu/ and options as bench/gpu_bench.sh: after it, on a warm machine, nothing rebuilds.
bash scripts/gpu_build.sh build-gpu.log lorascope
echo "run_all: built build-gpu/lorascope in $(( $(date +%s) - start ))s"
python3 tests/interop/interop.py --lorascope "$root/build-gpu/lorascope" --lines .interop/lines.txt \
  --work "${INTEROP_WORK:-/tmp/lorascope_interop}" "$@"
