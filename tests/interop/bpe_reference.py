#!/usr/bin/env python3
"""An independent pure-Python byte-level BPE (GPT-2's algorithm, `regex` for \\p{L}), to check
`lorascope hf tokenize` on real text where the `tokenizers` package is not installed.

    /usr/bin/python3 tests/interop/bpe_reference.py --lorascope build/lorascope \\
        --lines .interop/lines.txt [--merges 800]

Trains a small BPE here (the most frequent pair, repeatedly) on the lines, writes two
tokenizer.json files in the `tokenizers` format (GPT-2 ByteLevel with "a b" merges; LLaMA-3 Split
+ ByteLevel + ignore_merges with [a, b] merges), encodes every line with this reference and with
lorascope, and prints PASS/FAIL per file. Needs python3-regex (Debian). The real proof against
`tokenizers` is tests/interop/interop.py.
"""
import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile

import regex

GPT2 = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
LLAMA3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
          r"\s*[\r\n]+|\s+(?!\S)|\s+")


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


B2U = bytes_to_unicode()


def pieces(text, pattern):
    out, last = [], 0
    for m in regex.finditer(pattern, text):
        if m.start() > last:
            out.append(text[last:m.start()])
        if m.end() > m.start():
            out.append(m.group())
        last = m.end()
    if last < len(text):
        out.append(text[last:])
    return out


def mapped(piece):
    return "".join(B2U[b] for b in piece.encode("utf-8"))


def train(words, n_merges):
    counts = collections.Counter(words)
    seqs = {w: list(w) for w in counts}
    merges = []
    for _ in range(n_merges):
        pairs = collections.Counter()
        for w, c in counts.items():
            s = seqs[w]
            for a, b in zip(s, s[1:]):
                pairs[a, b] += c
        if not pairs:
            break
        (a, b), c = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))
        if c < 2:
            break
        merges.append((a, b))
        for w in counts:
            s, i, out = seqs[w], 0, []
            while i < len(s):
                if i + 1 < len(s) and s[i] == a and s[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            seqs[w] = out
    return merges


def bpe(word, ranks):
    syms = list(word)
    while len(syms) > 1:
        best = min(((ranks.get((syms[i], syms[i + 1]), 1 << 60), i) for i in range(len(syms) - 1)))
        if best[0] == 1 << 60:
            break
        i = best[1]
        syms[i:i + 2] = [syms[i] + syms[i + 1]]
    return syms


def encode(text, pattern, vocab, ranks, ignore_merges):
    ids = []
    for p in pieces(text, pattern):
        m = mapped(p)
        if ignore_merges and m in vocab:
            ids.append(vocab[m])
            continue
        ids.extend(vocab[s] for s in bpe(m, ranks))
    return ids


def tokenizer_json(vocab, merges, pre, as_list, ignore_merges):
    return {"version": "1.0", "added_tokens": [], "normalizer": None, "pre_tokenizer": pre, "post_processor": None,
            "decoder": {"type": "ByteLevel"},
            "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                      "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                      "ignore_merges": ignore_merges, "vocab": vocab,
                      "merges": [[a, b] if as_list else f"{a} {b}" for a, b in merges]}}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lorascope", required=True)
    ap.add_argument("--lines", required=True)
    ap.add_argument("--merges", type=int, default=400)
    a = ap.parse_args()
    with open(a.lines, encoding="utf-8") as f:
        lines = [l for l in f.read().split("\n") if l]
    failed = 0
    work = tempfile.mkdtemp(prefix="lorascope_bpe_ref_")
    lines_path = os.path.join(work, "lines.txt")
    with open(lines_path, "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(lines) + "\n")
    styles = [
        ("gpt2", GPT2, {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
         False, False),
        ("llama3", LLAMA3, {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": LLAMA3}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}, True, True),
    ]
    for name, pattern, pre, as_list, ignore in styles:
        words = [mapped(p) for l in lines for p in pieces(l, pattern)]
        merges = train(words, a.merges)
        vocab = {B2U[b]: b for b in range(256)}
        for x, y in merges:
            vocab.setdefault(x + y, len(vocab))
        ranks = {m: i for i, m in enumerate(merges)}
        path = os.path.join(work, f"{name}.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(tokenizer_json(vocab, merges, pre, as_list, ignore), f, ensure_ascii=False)
        out = os.path.join(work, f"{name}.jsonl")
        subprocess.run([a.lorascope, "hf", "tokenize", "--tokenizer", path, "--in", lines_path, "--out", out],
                       check=True)
        with open(out) as f:
            got = [json.loads(l) for l in f if l.strip()]
        want = [encode(l, pattern, vocab, ranks, ignore) for l in lines]
        bad = [i for i in range(len(want)) if i >= len(got) or got[i] != want[i]]
        tokens = sum(map(len, want))
        status = "PASS" if not bad and len(got) == len(want) else "FAIL"
        failed += status == "FAIL"
        detail = f"{len(want) - len(bad)}/{len(want)} lines identical, {tokens} tokens, {len(merges)} merges"
        if bad:
            i = bad[0]
            detail += f"; line {i} {lines[i][:60]!r}: lorascope {got[i][:10] if i < len(got) else None} vs {want[i][:10]}"
        print(f"{name:<8} {status} {detail}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
