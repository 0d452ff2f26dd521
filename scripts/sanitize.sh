#!/usr/bin/env bash
# The unit suite under AddressSanitizer + UndefinedBehaviorSanitizer (gcc), in its own build
# directory build-asan/. Usage: scripts/sanitize.sh [extra ctest arguments]
#
# Left out: the tests that load the sentencepiece plugin. It has to be dlopen'ed with
# RTLD_DEEPBIND (data/spm_backend.h), which the ASan runtime refuses (it would mix allocators);
# its parsing is fuzzed instead (scripts/fuzz.sh tokenizer). Leak checking is off: LibTorch's and
# OpenBLAS's process-lifetime allocations are reported as leaks; the fuzz targets check leaks.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup_deps.sh
flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Release -DLORASCOPE_BUILD_TESTS=ON \
  -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" \
  -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=address,undefined" -DCMAKE_MODULE_LINKER_FLAGS="-fsanitize=address,undefined" >/dev/null
make -C build-asan -j"$(nproc)" --no-print-directory 2>&1 | grep -E "error|warning: .*sanitiz" || true
[ -x build-asan/tests/lorascope_tests ] || { echo "sanitize.sh: build failed"; exit 1; }
# allocator_may_return_null: MemoryBudgetTest asks for 4 PiB and expects the allocator to refuse.
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:detect_odr_violation=0:allocator_may_return_null=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# The tests that tokenize (sentencepiece plugin), by name.
uses_tokenizer='TokenizerTest|TrainerTest\.|FaultInjectionTest|BatchTest\.(Tokenize|Classification|Sft|Packed|SameSeed)|RealDatasets'
cd build-asan && ctest -j"$(nproc)" --output-on-failure -E "$uses_tokenizer" "$@"
