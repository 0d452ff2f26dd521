#!/usr/bin/env bash
# Installs the Debian 12 packages lorascope needs, only those missing (idempotent). Further
# packages named as arguments join them (scripts/fuzz.sh: clang libclang-rt-14-dev).
set -euo pipefail
packages=(g++ cmake make ninja-build libtorch-dev libopenblas0-openmp libopenblas-dev nlohmann-json3-dev libcli11-dev
          libeigen3-dev libgtest-dev libsentencepiece-dev libgloo-dev libpcre2-dev python3-matplotlib python3-numpy "$@")
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup_deps: installing ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
