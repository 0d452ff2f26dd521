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
cp /usr/include/sentencepiece_processor.h .gpu/include/
cp -P /usr/lib/x86_64-linux-gnu/libsentencepiece.so* .gpu/lib/
cp /usr/include/pcre2.h .gpu/include/
cp -P /usr/lib/x86_64-linux-gnu/libpcre2-8.so* .gpu/lib/
cp -r /usr/src/googletest .gpu/googletest
du -sh .gpu
