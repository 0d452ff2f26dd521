#!/usr/bin/env bash
# libFuzzer targets of tests/fuzz/ (clang, AddressSanitizer + UndefinedBehaviorSanitizer, leaks
# checked), built into build-fuzz/.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]   TARGET: config records mail tokenizer safetensors
#                                         bpe_tokenizer wordpiece_tokenizer (default: all)
#
# SECONDS = 0 runs every target once over its committed seeds in tests/fuzz/corpus/TARGET (CI);
# otherwise each target fuzzes for SECONDS, keeping new inputs in build-fuzz/corpus/TARGET (the
# committed seeds are not touched) and a crashing input in build-fuzz/artifacts/. Exit code 1 on
# the first crash, leak or undefined behaviour.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(config records mail tokenizer safetensors bpe_tokenizer wordpiece_tokenizer)
scripts/setup_deps.sh clang libclang-rt-14-dev
cmake -S . -B build-fuzz -DLORASCOPE_BUILD_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
make -C build-fuzz -j"$(nproc)" --no-print-directory >/dev/null
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
mkdir -p build-fuzz/artifacts
for t in "${targets[@]}"; do
  bin=build-fuzz/tests/fuzz/fuzz_$t
  seeds=tests/fuzz/corpus/$t
  log=build-fuzz/fuzz_$t.log
  if [ "$seconds" = 0 ]; then
    args=(-runs=0 "$seeds")
  else
    mkdir -p "build-fuzz/corpus/$t"
    args=(-max_total_time="$seconds" -print_final_stats=1 "build-fuzz/corpus/$t" "$seeds")
  fi
  rc=0
  "$bin" -artifact_prefix="build-fuzz/artifacts/$t-" "${args[@]}" >"$log" 2>&1 || rc=$?
  grep -E "^(#[0-9]+[[:space:]]+(INITED|DONE)|stat::number_of_executed_units|==[0-9]+==ERROR|SUMMARY)" "$log" || true
  if [ "$rc" != 0 ]; then
    tail -40 "$log"
    echo "fuzz.sh: fuzz_$t failed (exit $rc; input in build-fuzz/artifacts/, log $log)"
    exit 1
  fi
  echo "fuzz.sh: fuzz_$t ok"
done
