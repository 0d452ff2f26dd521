#!/usr/bin/env bash
# Configures and builds lorascope (and its tests) in build/. Extra arguments go to cmake.
# Ninja when installed (setup_deps.sh installs it): it rebuilds only what a change touches, where
# Make's per-target flags files rebuild every object when a source file is added. An existing
# build/ keeps the generator it was configured with.
set -euo pipefail
cd "$(dirname "$0")/.."
generator=()
if [ ! -f build/CMakeCache.txt ] && command -v ninja >/dev/null 2>&1; then generator=(-G Ninja); fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "${generator[@]}" "$@" >/dev/null
# The log is what scripts/check_quiet_build.sh counts warnings in.
cmake --build build -j"$(nproc)" 2>&1 | tee build/build.log
