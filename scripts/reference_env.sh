#!/usr/bin/env bash
# The reference environment: a Python virtual environment with the libraries lorascope is compared
# with (torch 2.15, transformers, peft, tokenizers, safetensors, sentencepiece, weightwatcher,
# tensorboard, numpy), every package pinned in scripts/reference_requirements.txt. Only the interop
# suite, the peer benchmarks and the LibTorch 2.x build use it; lorascope itself never needs it.
#
#   bash scripts/reference_env.sh        # idempotent; the last line printed is the env's python
#
# It lives outside the source tree, shared by every clone on the machine:
#   LORASCOPE_REFERENCE_ENV  the environment (default ~/.cache/lorascope/reference-env-<pins hash>)
#   LORASCOPE_WHEELS         the wheel cache (default ~/.cache/lorascope/wheels): the torch wheel is
#                            a CUDA build (with its nvidia-* wheels about 3 GB) that runs on CPU;
#                            it is downloaded once and every later install is offline from here.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_deps.sh python3-venv >&2
req=$PWD/scripts/reference_requirements.txt
cache=${XDG_CACHE_HOME:-$HOME/.cache}/lorascope
env_dir=${LORASCOPE_REFERENCE_ENV:-$cache/reference-env-$(sha256sum "$req" | cut -c1-12)}
wheels=${LORASCOPE_WHEELS:-$cache/wheels}
if ! cmp -s "$req" "$env_dir/.complete" 2>/dev/null; then
  echo "reference_env: creating $env_dir" >&2
  rm -rf "$env_dir"
  mkdir -p "$wheels" "$(dirname "$env_dir")"
  /usr/bin/python3 -m venv "$env_dir"
  pip=("$env_dir/bin/python" -m pip --disable-pip-version-check)
  # Offline from the cache first; download only what it lacks (pip skips files already there).
  if ! "${pip[@]}" install -q --no-index --find-links "$wheels" -r "$req" >&2 2>/dev/null; then
    echo "reference_env: downloading the missing wheels into $wheels" >&2
    "${pip[@]}" download -q --only-binary=:all: -d "$wheels" -r "$req" >&2
    "${pip[@]}" install -q --no-index --find-links "$wheels" -r "$req" >&2
  fi
  cp "$req" "$env_dir/.complete"  # written last: an interrupted install is redone next time
fi
echo "$env_dir/bin/python"
