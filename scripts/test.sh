#!/usr/bin/env bash
# README command (2): installs what is missing, builds everything and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup_deps.sh
scripts/build.sh -DLORASCOPE_BUILD_TESTS=ON
cd build && ctest --output-on-failure -j"$(nproc)"
