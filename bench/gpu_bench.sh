#!/usr/bin/env bash
# One call on the GPU machine (device tool): build lorascope against the PyTorch there, run the
# whole test suite (GPU tests included), time lorascope beside its Python peers on the same
# shapes, print a table last. Usage, from the repository root, after `bash scripts/gpu_vendor.sh`
# here (headers and libsentencepiece the GPU machine lacks, in the ignored .gpu/):
#
#   bash bench/gpu_bench.sh            # device tool: run(command="bash bench/gpu_bench.sh", carry=[".gpu"])
#
# Logs and JSON lines go to $OUT (the device tool's folder that comes back) or bench-out/.
# Environment: LAYERS (16), STEPS (12), SKIP_TESTS=1, JOBS (nproc).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/bench-out}
mkdir -p "$OUT"
LAYERS=${LAYERS:-16}
STEPS=${STEPS:-12}
JOBS=${JOBS:-$(nproc)}
RESULTS="$OUT/results.jsonl"
: > "$RESULTS"
log() { printf '[gpu_bench %(%H:%M:%S)T] %s\n' -1 "$*" | tee -a "$OUT/progress.log"; }

nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv > "$OUT/gpu.txt" 2>&1
cat "$OUT/gpu.txt"
TORCH_PREFIX=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')
python3 -c 'import torch,transformers,peft;print("torch",torch.__version__,"cuda",torch.version.cuda,"transformers",transformers.__version__,"peft",peft.__version__)' | tee "$OUT/versions.txt"
[ -d .gpu ] || { echo "gpu_bench: .gpu/ missing: run scripts/gpu_vendor.sh here and carry .gpu" >&2; exit 1; }
export LD_LIBRARY_PATH="$PWD/.gpu/lib:$(python3 -c 'import torch,os;print(os.path.join(os.path.dirname(torch.__file__),"lib"))')${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

log "configure"
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$TORCH_PREFIX" \
  -DLORASCOPE_VENDOR_DIR="$PWD/.gpu" -DLORASCOPE_BUILD_BENCH=ON > "$OUT/cmake.log" 2>&1 \
  || { tail -40 "$OUT/cmake.log"; exit 1; }
log "build lorascope + tests"
make -C build-gpu -j"$JOBS" lorascope lorascope_tests > "$OUT/build.log" 2>&1 \
  || { grep -m20 -B2 -A8 "error" "$OUT/build.log"; tail -20 "$OUT/build.log"; exit 1; }
log "build bench"
BENCH_OK=1
make -C build-gpu -j"$JOBS" lorascope_bench > "$OUT/build_bench.log" 2>&1 \
  || { BENCH_OK=0; grep -m20 -B2 -A8 "error" "$OUT/build_bench.log"; }

if [ "${SKIP_TESTS:-0}" != 1 ]; then
  log "GPU tests"
  build-gpu/tests/lorascope_tests --gtest_filter='CudaTest.*' > "$OUT/cuda_tests.log" 2>&1
  tail -15 "$OUT/cuda_tests.log"
  log "whole suite (ctest)"
  (cd build-gpu && ctest -j"$JOBS" --timeout 600 --output-on-failure) > "$OUT/ctest.log" 2>&1
  grep -E "tests passed|tests failed|\*\*\*Failed|Not Run|Timeout" "$OUT/ctest.log" | tail -20
fi

B=build-gpu/bench/lorascope_bench
run() {  # name, command...: JSON lines into $RESULTS, stderr into $OUT/name.log
  local name=$1; shift
  log "$name"
  "$@" 2> "$OUT/$name.log" | tee -a "$RESULTS" || echo "{\"bench\":\"failed\",\"name\":\"$name\"}" >> "$RESULTS"
}
run matmul_peak python3 bench/peer_finetune.py --matmul-peak
for t in qv all; do
  r=8; [ "$t" = all ] && r=16
  [ $BENCH_OK = 1 ] && run "muon_$t" $B --layers 16 muon-step --targets $t --r $r
  run "peer_muon_$t" python3 bench/peer_muon_step.py --layers 16 --targets $t --r $r
done
[ $BENCH_OK = 1 ] && run finetune $B --layers "$LAYERS" finetune --optim adamw,muon \
  --monitor-every 0,1 --steps "$STEPS"
run peer_finetune python3 bench/peer_finetune.py --layers "$LAYERS" --optim adamw,muon --steps "$STEPS"
log "done"
python3 bench/gpu_table.py "$RESULTS" | tee "$OUT/table.md"
