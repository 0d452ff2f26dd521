#!/usr/bin/env bash
# The unit suite under AddressSanitizer + UndefinedBehaviorSanitizer (gcc), in its own build
# directory build-asan/. Usage: scripts/sanitize.sh [extra ctest arguments]
#
# The sentencepiece plugin is dlopen'ed with RTLD_DEEPBIND (data/spm_backend.h), which ASan's
# dlopen interceptor refuses; under ASan data/spm_backend.cpp loads it through dlmopen into the
# base namespace instead, so every test runs here. Leak checking is off: LibTorch's and
# OpenBLAS's process-lifetime allocations are reported as leaks; the fuzz targets check leaks.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup_deps.sh
flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Release -DLORASCOPE_BUILD_TESTS=ON \
  -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" \
  -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=address,undefined" -DCMAKE_MODULE_LINKER_FLAGS="-fsanitize=address,undefined" >/dev/null
if ! make -C build-asan -j"$(nproc)" --no-print-directory >build-asan/make.log 2>&1; then
  grep -E "error" build-asan/make.log | head -20
  echo "sanitize.sh: build failed (whole log: build-asan/make.log)"
  exit 1
fi
# allocator_may_return_null: MemoryBudgetTest asks for 4 PiB and expects the allocator to refuse.
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:detect_odr_violation=0:allocator_may_return_null=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
cd build-asan && ctest -j"$(nproc)" --output-on-failure "$@"
