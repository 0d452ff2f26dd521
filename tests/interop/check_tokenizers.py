#!/usr/bin/env python3
"""`lorascope hf tokenize` against the `tokenizers` library, token for token.

    python check_tokenizers.py --lorascope build/lorascope --work /tmp/x --data .cache/data \\
        [--models .cache/models] [--quick]

Tokenizer files:
  - the real sentence-transformers all-MiniLM-L6-v2 tokenizer.json and vocab.txt (WordPiece),
    from MODELS/all-MiniLM-L6-v2 (bash scripts/fetch_model.sh), SKIP when absent;
  - any tokenizer.json / vocab.txt shipped inside the installed Python packages;
  - files in the formats real models ship, made here by `tokenizers` itself trained on Brown
    (tests/golden/make_tokenizers.py builders, larger vocabularies): WordPiece (json and
    vocab.txt), GPT-2/RoBERTa ByteLevel with <mask> lstrip, LLaMA-3 Split + ByteLevel,
    o200k-style Split Isolated, cl100k Split Removed/invert with NFD + Lowercase, LLaMA-2
    byte_fallback BPE (Prepend + Replace), Mistral (Metaspace, prepend "first").
Texts: Brown, Moby-Dick and SpamAssassin lines, hard text (every kind of whitespace, control
characters, many scripts, emoji and ZWJ sequences, Unicode 15/16 characters, accents and
combining marks, CJK, special tokens inside text, words up to 20,000 letters), and a sweep of
every Unicode scalar value (except LF) in letter/number/space contexts.
Each file is compared without special tokens (ids), with them (ids and type ids, the
post-processor's), and on tab-separated pairs (of lines up to 2,000 characters) truncated to 64 ids. One line per check:
PASS/FAIL name: lines, tokens, mismatches (tolerance 0 mismatches).
"""
import argparse
import json
import os
import random
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "golden"))

failed = False


def report(ok, name, measured, tolerance="0 mismatches"):
    global failed
    failed |= not ok
    print(f"{'PASS' if ok else 'FAIL'} {name}: {measured} (tolerance {tolerance})", flush=True)


def skip(name, why):
    print(f"SKIP {name}: {why}", flush=True)


# ---------------------------------------------------------------- texts

def brown_lines(data, limit):
    root = os.path.join(data, "brown")
    files = sorted(f for f in os.listdir(root) if re.fullmatch(r"c[a-r]\d\d", f))
    out = []
    for name in files:
        with open(os.path.join(root, name), encoding="utf-8", errors="replace") as f:
            for line in f:
                text = " ".join(w.rsplit("/", 1)[0] for w in line.split()).strip()
                if text:
                    out.append(text)
    return out[:: max(1, len(out) // limit)][:limit]


def moby_lines(data, limit):
    root = os.path.join(data, "moby-dick", "data")
    out = []
    for name in sorted(os.listdir(root), key=lambda n: [int(x) if x.isdigit() else x for x in re.split(r"(\d+)", n)]):
        if name.endswith(".txt"):
            with open(os.path.join(root, name), encoding="utf-8", errors="replace") as f:
                out += [line.rstrip("\n") for line in f if line.strip()]
    return out[:: max(1, len(out) // limit)][:limit]


def spam_lines(data, limit):
    out = []
    for group in ("easy-ham-1", "hard-ham-1", "spam-1", "spam-2"):
        d = os.path.join(data, "spam-assassin", "data", group)
        if not os.path.isdir(d):
            continue
        for name in sorted(os.listdir(d))[:80]:
            with open(os.path.join(d, name), "rb") as f:
                text = f.read().decode("utf-8", errors="replace")
            out += [line for line in text.split("\n") if line.strip()]  # raw: CR, tabs, HTML kept
    return out[:: max(1, len(out) // limit)][:limit]


SPACES = "\t\r\x0b\x0c \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a" \
         "\u2028\u2029\u202f\u205f\u3000\u180e\u200b\u200c\u200d\u2060\ufeff"
CONTROLS = "".join(chr(c) for c in list(range(0, 10)) + list(range(11, 32)) + list(range(0x7f, 0xa0)))
SCRIPTS = [
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
    "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~\u00a1\u00bf\u00ab\u00bb\u2018\u2019\u201c\u201d\u2026\u2014\u2013\u00a7\u00b6\u2020\u20ac\u00a3\u00a5",
    "\u00e0\u00e1\u00e2\u00e3\u00e4\u00e5\u00e6\u00e7\u00e8\u00e9\u00ea\u00eb\u00f1\u00f6\u00f8\u00fc\u00df\u0130\u0131\u0141\u0142\u0152\u0153\u1e9e\u01c5\u212b\u2126",
    "\u03b1\u03b2\u03b3\u03b4\u03c3\u03c2\u03a3\u0394\u0386\u0390\u03b0",
    "\u0430\u0431\u0432\u0433\u0434\u0416\u0429\u042f\u0451\u0401\u0456",
    "\u0627\u0644\u0639\u0631\u0628\u064a\u0629\u064b\u064c\u064d\u0660\u0661\u06f1",
    "\u05d0\u05d1\u05d2\u05e9\u05dc\u05d5\u05dd\u05b0\u05b4",
    "\u0939\u093f\u0928\u094d\u0926\u0940\u0915\u093c\u0966\u0967",
    "\u0e20\u0e32\u0e29\u0e32\u0e44\u0e17\u0e22\u0e51",
    "\u4e2d\u6587\u5b57\u7b26\u65e5\u672c\u8a9e\u3400\u9fff\uf900\U00020000\U0002a700\U00031350\U0002ebf0",
    "\u3042\u3044\u3046\u30a2\u30a4\u30a6\u30fc\u3001\u3002\uff01\uff1f\uff10\uff21",
    "\ud55c\uad6d\uc5b4\uac00\ud7a3\u1100\u1161\u11a8",
    "\u10d0\u10d1\u0561\u0562\u1200\u1201\u13a0\u1401",
    "\u0300\u0301\u0302\u0303\u0308\u0316\u0323\u0327\u0345\u034f\u20dd\u20e3\U0001d165\U0001d16d",
    "\U0001f600\U0001f44d\U0001f3fd\u2764\ufe0f\U0001f1eb\U0001f1f7\U0001f468\u200d\U0001f469\u200d\U0001f467\U0001f3f3\ufe0f\u200d\U0001f308",
    "\U00011f04\U00011f50\U00011f59\U00011f43\U00010d40\U00010d4a\U00011380\U000105c0\U00011bc0\U00016100\U00016d40\U0001e5d0\U0001e5f1",
    "\ue000\U000f0000\u0378\u0380\U000e0001\U000e0041\ufffd\ufffe",
]
SPECIALS = ["<mask>", "<s>", "</s>", "<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]", "[PAD]", "[UNK]", "[mask]",
            "<|begin_of_text|>", "<|endoftext|>", "<|eot_id|>", "[rstrip]", "word", "Hello World", "<0x41>", "\u2581"]


def hard_lines(n, seed):
    rng = random.Random(seed)
    groups = [SPACES, CONTROLS] + SCRIPTS
    out = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(1, 30)):
            r = rng.random()
            if r < 0.1:
                parts.append(rng.choice(SPECIALS))
            elif r < 0.25:
                parts.append(" " * rng.randint(1, 3))
            else:
                g = rng.choice(groups)
                parts.append("".join(rng.choice(g) for _ in range(rng.randint(1, 12))))
        out.append("".join(parts))
    # Long unbroken words, and whitespace-only / empty lines.
    out += ["a" * 1000, "ab" * 5000, "supercalifragilistic" * 1000, "x" * 20000, "\u00e9" * 3000, "\u4e2d" * 2000,
            "hello" * 4000, "1234567890" * 500, "", " ", "\t\t", "  \u3000  ", "\u200b"]
    return [line.replace("\n", " ") for line in out]


def sweep_lines(per_line=64):
    """Every Unicode scalar value except LF, each in letter, number and space contexts."""
    cps = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF and c != 0x0A]
    lines = []
    for i in range(0, len(cps), per_line):
        lines.append("".join(f"a{chr(c)}b{chr(c)}1 {chr(c)}" for c in cps[i:i + per_line]))
    return lines


# ---------------------------------------------------------------- comparison

def write_lines(path, lines):
    with open(path, "w", encoding="utf-8", newline="") as f:
        for line in lines:
            f.write(line + "\n")


def run_lorascope(args, tok_path, lines_path, out_path, extra):
    t = time.time()
    r = subprocess.run([args.lorascope, "hf", "tokenize", "--tokenizer", tok_path, "--in", lines_path, "--out", out_path]
                       + extra, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"lorascope hf tokenize failed ({r.returncode}): {r.stderr.strip()[-500:]}")
    with open(out_path, encoding="utf-8") as f:
        return [json.loads(line) for line in f], time.time() - t


def compare(args, name, tok_path, tok, lines, mode, max_len=64):
    """mode: plain (ids, no special tokens), special (ids and type ids), pairs (TEXT\\tPAIR, truncated)."""
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
    lines_path = os.path.join(args.work, f"{stem}.{mode}.txt")
    write_lines(lines_path, lines)
    extra = {"plain": [], "special": ["--special-tokens"],
             "pairs": ["--special-tokens", "--pairs", "--max-len", str(max_len)]}[mode]
    got, t_lorascope = run_lorascope(args, tok_path, lines_path, os.path.join(args.work, f"{stem}.{mode}.jsonl"), extra)
    tok.no_padding()
    tok.no_truncation()
    t = time.time()
    if mode == "plain":
        want = [e.ids for e in tok.encode_batch(lines, add_special_tokens=False)]
        got = [g if isinstance(g, list) else g["ids"] for g in got]
    elif mode == "special":
        want = [{"ids": e.ids, "type_ids": e.type_ids} for e in tok.encode_batch(lines, add_special_tokens=True)]
    else:
        tok.enable_truncation(max_len)
        pairs = [tuple(line.split("\t", 1)) if "\t" in line else line for line in lines]
        want = [{"ids": e.ids, "type_ids": e.type_ids} for e in tok.encode_batch(pairs, add_special_tokens=True)]
        tok.no_truncation()
    t_ref = time.time() - t
    if len(got) != len(want):
        report(False, f"tokenize {name} {mode}", f"{len(got)} lines from lorascope, {len(want)} from tokenizers")
        return
    bad = [i for i, (g, w) in enumerate(zip(got, want)) if g != w]
    tokens = sum(len(w if mode == "plain" else w["ids"]) for w in want)
    detail = f"{len(lines)} lines, {tokens} tokens, {len(bad)} mismatches (lorascope {t_lorascope:.1f} s, tokenizers {t_ref:.1f} s)"
    if bad:
        i = bad[0]
        detail += f"; first at line {i}: {lines[i][:80]!r}: lorascope {str(got[i])[:160]} vs tokenizers {str(want[i])[:160]}"
    report(not bad, f"tokenize {name} {mode}", detail)


def long_word_timing(args, files):
    """One word of 20,000 letters through the byte-level RoBERTa-style file: same ids, both times."""
    found = [f for f in files if f[0] == "trained roberta.json"]
    if not found:
        return
    name, path, tok, _ = found[0]
    rng = random.Random(1)
    word = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(20000))
    empty, one = os.path.join(args.work, "empty.txt"), os.path.join(args.work, "long_word.txt")
    write_lines(empty, [""])
    reps = 10  # the word 10 times, so that start-up noise does not hide the encoding time
    write_lines(one, [word] * reps)
    _, t0 = run_lorascope(args, path, empty, os.path.join(args.work, "empty.jsonl"), [])
    got, t1 = run_lorascope(args, path, one, os.path.join(args.work, "long_word.jsonl"), [])
    t = time.time()
    want = [tok.encode(word, add_special_tokens=False).ids for _ in range(reps)]
    t_ref = (time.time() - t) / reps
    report(got == want, "tokenize long word",
           f"20,000 letters -> {len(want[0])} tokens, {'equal' if got == want else 'different'}; per word lorascope "
           f"{max(0.0, t1 - t0) / reps:.3f} s (beyond start-up), tokenizers {t_ref:.3f} s", "0 mismatches")


def published_files():
    """tokenizer.json / vocab.txt files shipped inside the installed Python packages."""
    import site
    found = []
    for root in site.getsitepackages():
        for dirpath, _, files in os.walk(root):
            for f in files:
                if f == "tokenizer.json" or (f == "vocab.txt" and "bert" in dirpath.lower()):
                    found.append(os.path.join(dirpath, f))
    return sorted(found)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lorascope", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--models", default=None, help="default: DATA/../models")
    ap.add_argument("--quick", action="store_true", help="fewer lines, no Unicode sweep")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    models = args.models or os.path.join(os.path.dirname(os.path.abspath(args.data)), "models")

    import tokenizers
    from tokenizers import Tokenizer
    from tokenizers.implementations import BertWordPieceTokenizer
    import make_tokenizers as mk

    n = 300 if args.quick else 2000
    real = brown_lines(args.data, n) + moby_lines(args.data, n // 2) + spam_lines(args.data, n)
    hard = hard_lines(200 if args.quick else 1500, seed=0)
    texts = real + hard
    # tokenizers' truncation builds every overflowing piece: minutes on 20,000-token lines, so the
    # pairs leave out the longest lines (the other modes keep them).
    short = [t for t in texts if len(t) <= 2000]
    pairs = [f"{a}\t{b}" for a, b in zip(short[::2], short[1::2])]
    sweep = [] if args.quick else sweep_lines()
    print(f"check_tokenizers: tokenizers {tokenizers.__version__}; {len(real)} real lines, {len(hard)} hard, "
          f"{len(sweep)} sweep lines", flush=True)

    files = []  # (name, path, tokenizers.Tokenizer, sweep?)
    minilm = os.path.join(models, "all-MiniLM-L6-v2")
    if os.path.isfile(os.path.join(minilm, "tokenizer.json")):
        files.append(("MiniLM tokenizer.json", os.path.join(minilm, "tokenizer.json"),
                      Tokenizer.from_file(os.path.join(minilm, "tokenizer.json")), True))
        files.append(("MiniLM vocab.txt", os.path.join(minilm, "vocab.txt"),
                      BertWordPieceTokenizer(os.path.join(minilm, "vocab.txt"))._tokenizer, False))
    else:
        skip("MiniLM", f"{minilm} missing (bash scripts/fetch_model.sh fetches it)")
    published = published_files()
    if not published:
        skip("published files in the venv", "no installed package ships a tokenizer.json or BERT vocab.txt")
    for p in published:
        if p.endswith(".json"):
            files.append((f"published {p}", p, Tokenizer.from_file(p), False))
        else:
            files.append((f"published {p}", p, BertWordPieceTokenizer(p)._tokenizer, False))
    trained_dir = os.path.join(args.work, "trained")
    os.makedirs(trained_dir, exist_ok=True)
    train = brown_lines(args.data, 3000)
    vocab = 2000
    for name, tok in mk.wordpiece(train, trained_dir, vocab_size=vocab) + mk.bpe_files(train, trained_dir, vocab_size=vocab):
        files.append((f"trained {name}", os.path.join(trained_dir, name), tok,
                      name in ("roberta.json", "o200k.json", "llama2.json")))

    long_word_timing(args, files)
    for name, path, tok, do_sweep in files:
        try:
            compare(args, name, path, tok, texts, "plain")
            compare(args, name, path, tok, texts, "special")
            compare(args, name, path, tok, pairs, "pairs")
            if sweep and do_sweep:
                compare(args, name + " unicode-sweep", path, tok, sweep, "plain")
        except RuntimeError as e:
            report(False, f"tokenize {name}", str(e))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
