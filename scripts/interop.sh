#!/usr/bin/env bash
# The interop suite: lorascope against the real transformers, peft, tokenizers and torch (the
# reference environment, scripts/reference_env.sh), on CPU, plus the whole unit suite a second
# time against LibTorch 2.x (tests/interop/check_libtorch2.py).
#
#   bash scripts/interop.sh [--only REGEX] [--device cuda] [--build DIR] [--python PY]
#
# Builds what it needs (build/ through scripts/build.sh when missing, then the lorascope and
# lorascope_interop_driver targets), runs every tests/interop/check_*.py (or those whose name
# matches REGEX) with --lorascope build/lorascope --work SCRATCH --data .cache/data, and ends with
# `N passed, M failed` over all their PASS/FAIL lines (exit 1 when M > 0). A check script that
# dies without a FAIL line counts as one failure. Environment: LORASCOPE_INTEROP_WORK (scratch,
# default a fresh temporary folder, removed at the end unless kept), LORASCOPE_INTEROP_KEEP=1,
# LORASCOPE_INTEROP_THREADS (torch and lorascope threads, default 2), LORASCOPE_INTEROP_TIMEOUT
# (seconds per check script, default 2400). --build DIR uses DIR/lorascope and
# DIR/tests/lorascope_interop_driver as they are (built by the caller: tests/interop/run_all.sh on
# the GPU machine), --python PY an interpreter that already has the reference libraries.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
only=.
device=cpu
build_dir=
py=
while [ $# -gt 0 ]; do
  case $1 in
    --only) only=$2; shift 2 ;;
    --device) device=$2; shift 2 ;;
    --build) build_dir=$(cd "$2" && pwd); shift 2 ;;
    --python) py=$2; shift 2 ;;
    *) echo "interop: unknown argument $1 (expected --only REGEX, --device cpu|cuda, --build DIR, --python PY)" >&2
       exit 2 ;;
  esac
done
export LORASCOPE_INTEROP_DEVICE=$device
export LORASCOPE_INTEROP_THREADS=${LORASCOPE_INTEROP_THREADS:-2}
export OMP_NUM_THREADS=$LORASCOPE_INTEROP_THREADS MKL_NUM_THREADS=$LORASCOPE_INTEROP_THREADS
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1
export TOKENIZERS_PARALLELISM=false PYTHONDONTWRITEBYTECODE=1

t0=$(date +%s)
stamp() { echo "interop: $1 ($(( $(date +%s) - t0 )) s)"; }
if [ -z "$build_dir" ]; then
  build_dir=$root/build
  if [ ! -x build/lorascope ] || [ ! -f build/CMakeCache.txt ]; then
    bash scripts/setup_deps.sh
    bash scripts/build.sh -DLORASCOPE_BUILD_TESTS=ON
  fi
  cmake --build build -j"$(nproc)" --target lorascope lorascope_interop_driver > /dev/null
fi
export LORASCOPE_INTEROP_DRIVER=$build_dir/tests/lorascope_interop_driver
stamp "$build_dir/lorascope and $LORASCOPE_INTEROP_DRIVER ready"
# The datasets some checks read (tokenizers on real text) and the MiniLM checkpoint
# (check_embeddings); idempotent, and a check that finds no
# data says so itself.
[ -d "$root/.cache/data/brown" ] || bash scripts/fetch_data.sh || echo "interop: fetch_data.sh failed" >&2
[ -f "$root/.cache/models/all-MiniLM-L6-v2/model.safetensors" ] || bash scripts/fetch_model.sh \
  || echo "interop: fetch_model.sh failed" >&2
[ -n "$py" ] || py=$(bash scripts/reference_env.sh | tail -1)
stamp "reference environment ready: $py"

work=${LORASCOPE_INTEROP_WORK:-$(mktemp -d /tmp/lorascope_interop.XXXXXX)}
mkdir -p "$work"
[ -n "${LORASCOPE_INTEROP_WORK:-}" ] || [ "${LORASCOPE_INTEROP_KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT

passed=0; failed=0; skipped=0
for script in tests/interop/check_*.py; do
  name=$(basename "$script" .py)
  echo "$name" | grep -Eq -- "$only" || continue
  log="$work/$name.log"
  start=$(date +%s)
  set +e
  (cd tests/interop && timeout "${LORASCOPE_INTEROP_TIMEOUT:-2400}" "$py" "$name.py" \
      --lorascope "$build_dir/lorascope" --work "$work/$name" --data "$root/.cache/data") 2>&1 | tee "$log" \
    | grep -E '^(PASS|FAIL|SKIP) |^libtorch2: |passed, .* failed|Error|error:'
  rc=${PIPESTATUS[0]}  # the check script's status (set +e: a grep finding nothing is no failure)
  set -e
  p=$(grep -c '^PASS ' "$log" || true); f=$(grep -c '^FAIL ' "$log" || true); s=$(grep -c '^SKIP ' "$log" || true)
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    echo "FAIL $name: exited $rc without a FAIL line (last lines below) (tolerance n/a)"
    tail -15 "$log"
    f=1
  fi
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
  echo "interop: $name: $p passed, $f failed, $s skipped in $(( $(date +%s) - start )) s"
done
stamp "done ($skipped skipped)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
