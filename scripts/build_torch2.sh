#!/usr/bin/env bash
# Builds lorascope and its whole test suite a second time, against the LibTorch 2.x inside the
# reference environment's torch wheel (C++20), into build-torch2/. The default build (build/,
# Debian's LibTorch 1.13) is untouched; scripts/interop.sh runs ctest in both.
#
#   bash scripts/build_torch2.sh [TARGET...]     # default: every target
#
# The wheel's CMake config is a CUDA build's: it wants nvcc and CUDA headers of the wheel's CUDA
# version. They come pinned from the same package index (scripts/reference_build_requirements.txt,
# installed into the reference venv, offline from the shared wheel cache after the first time),
# laid out as a CUDA toolkit folder of links (build-torch2/cuda-toolkit). Nothing is compiled
# for a GPU; the binaries run on CPU (a GPU would be used where present).
set -euo pipefail
cd "$(dirname "$0")/.."
py=$(bash scripts/reference_env.sh | tail -1)
env_dir=$(dirname "$(dirname "$py")")
req=$PWD/scripts/reference_build_requirements.txt
wheels=${LORASCOPE_WHEELS:-${XDG_CACHE_HOME:-$HOME/.cache}/lorascope/wheels}
if ! cmp -s "$req" "$env_dir/.complete-build" 2>/dev/null; then
  pip=("$py" -m pip --disable-pip-version-check)
  if ! "${pip[@]}" install -q --no-deps --no-index --find-links "$wheels" -r "$req" >&2 2>/dev/null; then
    echo "build_torch2: downloading the CUDA compiler wheels into $wheels" >&2
    "${pip[@]}" download -q --no-deps --only-binary=:all: -d "$wheels" -r "$req" >&2
    "${pip[@]}" install -q --no-deps --no-index --find-links "$wheels" -r "$req" >&2
  fi
  cp "$req" "$env_dir/.complete-build"
fi
site=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
torch_dir=$site/torch
cuda=$site/nvidia/cu13
[ -x "$cuda/bin/nvcc" ] || { echo "build_torch2: $cuda/bin/nvcc missing after installing $req" >&2; exit 1; }

# A CUDA toolkit folder as FindCUDA / nvcc expect it: bin, include, nvvm, and lib with the
# unversioned names (the wheels ship only libcudart.so.13 and the like).
kit=$PWD/build-torch2/cuda-toolkit
rm -rf "$kit"
mkdir -p "$kit/lib"
for d in bin include nvvm; do ln -s "$cuda/$d" "$kit/$d"; done
for f in "$cuda"/lib/*; do
  b=$(basename "$f")
  ln -sf "$f" "$kit/lib/$b"
  case $b in *.so.*) ln -sf "$f" "$kit/lib/${b%%.so.*}.so" ;; esac
done
ln -s lib "$kit/lib64"

export PATH="$kit/bin:$PATH"
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}  # skips probing for a GPU at configure time
if [ ! -f build-torch2/CMakeCache.txt ]; then
  generator=()
  if command -v ninja >/dev/null 2>&1; then generator=(-G Ninja); fi  # as scripts/build.sh
  # CMAKE_PREFIX_PATH names the wheel's torch folder itself, so that find_library(c10 ...) in
  # TorchConfig finds the wheel's libc10.so and not Debian's. CMake 3.25 knows no C++20 flag for
  # nvcc, and no CUDA source is compiled: the CUDA standard stays 17.
  cmake -S . -B build-torch2 "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_STANDARD=20 -DCMAKE_CUDA_STANDARD=17 \
    "-DCMAKE_PREFIX_PATH=$torch_dir;$torch_dir/share/cmake" -DCUDA_TOOLKIT_ROOT_DIR="$kit" \
    -DCUDAToolkit_ROOT="$kit" -DLORASCOPE_BUILD_TESTS=ON > build-torch2/configure.log 2>&1 \
    || { tail -40 build-torch2/configure.log; echo "build_torch2: configure failed (build-torch2/configure.log)" >&2; exit 1; }
fi
targets=()
for t in "$@"; do targets+=(--target "$t"); done
cmake --build build-torch2 -j"$(nproc)" "${targets[@]}"
