#!/usr/bin/env bash
# Gathers, from this Debian machine's packages, what the GPU machine lacks and cannot install:
# the header-only libraries, libsentencepiece, PCRE2 and googletest's sources, into .gpu/ (ignored).
# The device tool carries .gpu/ there; cmake gets -DLORASCOPE_VENDOR_DIR=$PWD/.gpu.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_deps.sh
rm -rf .gpu && mkdir -p .gpu/include .gpu/lib
cp -r /usr/include/nlohmann /usr/include/CLI .gpu/include/
cp -r /usr/include/eigen3/Eigen .gpu/include/
# The plugin (data/spm/spm_module.cpp) both trains and loads: both headers, both libraries.
cp /usr/include/sentencepiece_processor.h /usr/include/sentencepiece_trainer.h .gpu/include/
cp -P /usr/lib/x86_64-linux-gnu/libsentencepiece.so* /usr/lib/x86_64-linux-gnu/libsentencepiece_train.so* .gpu/lib/
cp /usr/include/pcre2.h .gpu/include/
cp -P /usr/lib/x86_64-linux-gnu/libpcre2-8.so* .gpu/lib/
cp -r /usr/src/googletest .gpu/googletest
# Fail here, not on the device, when something is missing.
for f in include/nlohmann/json.hpp include/CLI/CLI.hpp include/Eigen/Dense include/sentencepiece_processor.h \
  include/sentencepiece_trainer.h include/pcre2.h lib/libsentencepiece.so lib/libsentencepiece_train.so \
  lib/libpcre2-8.so googletest/CMakeLists.txt; do
  [ -e ".gpu/$f" ] || { echo "gpu_vendor: .gpu/$f missing" >&2; exit 1; }
done
du -sh .gpu
