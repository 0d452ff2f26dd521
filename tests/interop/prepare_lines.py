#!/usr/bin/env python3
"""Writes the tokenizer-comparison lines: a few thousand lines of the Brown corpus (POS tags
stripped) and of SpamAssassin mail (raw, headers included: odd bytes, URLs, HTML), deterministic.

    /usr/bin/python3 tests/interop/prepare_lines.py [--data .cache/data] [--out .interop/lines.txt]

Needs only the standard library (run it here; the GPU machine gets the output carried, it has
no corpus). Every line is valid UTF-8 (undecodable bytes become U+FFFD), has no CR or LF, and
is not empty.
"""
import argparse
import os
import re


def brown_lines(root, limit):
    files = sorted(f for f in os.listdir(root) if re.fullmatch(r"c[a-r]\d\d", f))
    out = []
    for name in files:
        with open(os.path.join(root, name), encoding="utf-8", errors="replace") as f:
            for line in f:
                words = [w.rsplit("/", 1)[0] for w in line.split()]
                text = " ".join(words).strip()
                if text:
                    out.append(text)
    step = max(1, len(out) // limit)
    return out[::step][:limit]


def spam_lines(root, limit):
    out = []
    for group in ("easy-ham-1", "hard-ham-1", "spam-1", "spam-2"):
        d = os.path.join(root, "data", group)
        if not os.path.isdir(d):
            continue
        for name in sorted(os.listdir(d))[:60]:
            if not name.endswith(".txt"):
                continue
            with open(os.path.join(d, name), "rb") as f:
                text = f.read().decode("utf-8", errors="replace")
            for line in text.replace("\r", "\n").split("\n"):
                if line.strip():
                    out.append(line)
    step = max(1, len(out) // limit)
    return out[::step][:limit]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.environ.get("LORASCOPE_DATA_DIR", ".cache/data"))
    ap.add_argument("--out", default=".interop/lines.txt")
    ap.add_argument("--brown", type=int, default=2000)
    ap.add_argument("--spam", type=int, default=2000)
    a = ap.parse_args()
    lines = []
    if os.path.isdir(os.path.join(a.data, "brown")):
        lines += brown_lines(os.path.join(a.data, "brown"), a.brown)
    if os.path.isdir(os.path.join(a.data, "spam-assassin")):
        lines += spam_lines(os.path.join(a.data, "spam-assassin"), a.spam)
    if not lines:
        raise SystemExit(f"prepare_lines: no Brown or SpamAssassin data under {a.data} (scripts/fetch_data.sh fetches it)")
    os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
    with open(a.out, "w", encoding="utf-8", newline="\n") as f:
        for line in lines:
            f.write(line + "\n")
    print(f"prepare_lines: {len(lines)} lines -> {a.out}")


if __name__ == "__main__":
    main()
