#!/usr/bin/env bash
# One call on the GPU machine (device tool): build lorascope against the PyTorch there, run the
# GPU tests (the whole suite with TESTS=all), time lorascope beside its Python peers on the same
# shapes, print a table last. Usage, from the repository root, after `bash scripts/gpu_vendor.sh`
# here (headers and libsentencepiece the GPU machine lacks, in the ignored .gpu/):
#
#   bash bench/gpu_bench.sh            # device tool: run(command="bash bench/gpu_bench.sh", carry=[".gpu"])
#
# Results go to $OUT (the device tool's folder that comes back) or bench-out/, logs packed in
# $OUT/logs.tgz. Environment: LAYERS (16), STEPS (12), TESTS (cuda|all|none), STEP_LIMIT (150 s
# per bench).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/bench-out}
mkdir -p "$OUT"
# The device tool returns at most 8 files from $OUT: there go gpu.txt, progress.log,
# results.jsonl, table.md and logs.tgz (every log, packed at exit, also after a failure).
LOGS=${LOGS:-/tmp/gpu_bench_logs}
rm -rf "$LOGS" && mkdir -p "$LOGS"
trap 'tar czf "$OUT/logs.tgz" -C "$(dirname "$LOGS")" "$(basename "$LOGS")" 2>/dev/null' EXIT
LAYERS=${LAYERS:-16}
STEPS=${STEPS:-12}
STEP_LIMIT=${STEP_LIMIT:-150}  # seconds for each benchmark, so one hang cannot eat the lease
RESULTS="$OUT/results.jsonl"
: > "$RESULTS"
log() { printf '[gpu_bench %(%H:%M:%S)T] %s\n' -1 "$*" | tee -a "$OUT/progress.log"; }
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
# The python3 that holds torch and matplotlib (a virtualenv there) also draws lorascope's figures.
LORASCOPE_PYTHON=$(command -v python3); export LORASCOPE_PYTHON

{ nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
  python3 -c 'import torch,transformers,peft;print("torch",torch.__version__,"cuda",torch.version.cuda,"transformers",transformers.__version__,"peft",peft.__version__)'
} > "$OUT/gpu.txt" 2>&1
cat "$OUT/gpu.txt"
export LD_LIBRARY_PATH="$PWD/.gpu/lib:$(python3 -c 'import torch,os;print(os.path.join(os.path.dirname(torch.__file__),"lib"))')${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

log "configure + build lorascope, tests, bench"
BENCH_OK=1
if ! bash scripts/gpu_build.sh "$LOGS/build.log" lorascope lorascope_tests lorascope_bench; then
  # The bench may be what failed: try without it before giving up.
  BENCH_OK=0
  bash scripts/gpu_build.sh "$LOGS/build.log" lorascope lorascope_tests || { log "build failed"; exit 1; }
fi
ldd build-gpu/lorascope | grep -E "torch|cublas|cudart|sentencepiece|pcre2" > "$LOGS/ldd.txt"

# TESTS: cuda (default: the CudaTest.* checks only; the CPU suite is CI's), all (+ whole ctest), none.
TESTS=${TESTS:-cuda}
if [ "$TESTS" != none ]; then
  log "GPU tests"
  timeout 300 build-gpu/tests/lorascope_tests --gtest_filter='CudaTest.*' > "$LOGS/cuda_tests.log" 2>&1
  tail -15 "$LOGS/cuda_tests.log"
  # A skip means the binary saw no CUDA device: that is a failure here, not a pass.
  grep -q "SKIPPED" "$LOGS/cuda_tests.log" && log "CudaTest SKIPPED: this build does not see the GPU"
fi
if [ "$TESTS" = all ]; then
  log "whole suite (ctest)"
  (cd build-gpu && ctest -j"$(nproc)" --timeout 120 --output-on-failure) > "$LOGS/ctest.log" 2>&1
  grep -E "tests passed|tests failed|\*\*\*Failed|Not Run|Timeout" "$LOGS/ctest.log" | tail -20 | tee -a "$OUT/progress.log"
fi

B=build-gpu/bench/lorascope_bench
run() {  # name, command...: JSON lines into $RESULTS, stderr into $LOGS/name.log
  local name=$1; shift
  log "$name"
  timeout "$STEP_LIMIT" "$@" 2> "$LOGS/$name.log" | tee -a "$RESULTS"
  [ "${PIPESTATUS[0]}" = 0 ] || { echo "{\"bench\":\"failed\",\"name\":\"$name\"}" >> "$RESULTS"; tail -5 "$LOGS/$name.log"; }
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
