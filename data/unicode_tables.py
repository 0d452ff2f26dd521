#!/usr/bin/env python3
"""Writes data/unicode_tables.inc: the Unicode character data lorascope's tokenizers need, read
off the `tokenizers` library itself (the reference venv), so that lorascope classifies every code
point exactly as `tokenizers` does.

    PY=$(bash scripts/reference_env.sh | tail -1)
    OMP_NUM_THREADS=1 $PY data/unicode_tables.py          # about a minute

Why not a Debian library: `tokenizers` 0.23.3 mixes Unicode versions. Its regex engine knows
Unicode 16.0 (the Kawi digits U+11F50.. of 15.0 and the Garay digits U+10D40.. of 16.0 are \\p{N}),
while Debian 12 has PCRE2 10.42 and utf8proc 2.8 (Unicode 14.0 and 15.0) and ICU 72 (15.0); its
BERT normalizer and pre-tokenizer take categories from the `unicode_categories` crate and NFD from
`unicode-normalization-alignments`, whose tables are older again. So each column below is probed
through the very function of `tokenizers` that uses it, one code point at a time:

  gc            general category, as `\\p{..}` in a pre-tokenizer Split regex sees it
  re_space/digit/word  `\\s`, `\\d`, `\\w` in such a regex
  bert_clean    BertNormalizer(clean_text): keep / remove / map to " "
  bert_split    BertPreTokenizer: other / whitespace (dropped) / punctuation (isolated)
  chinese       BertNormalizer(handle_chinese_chars) puts spaces around it
  mn            dropped by strip_accents after NFD (the crate's Mn)
  tok_word/space  `\\w` / `\\s` as added tokens' single_word / lstrip / rstrip see them
  ccc_rank      canonical ordering of NFD: 0 for a starter, else the rank of its combining class
  nfd           the full canonical decomposition (NFD of the single character)
  lower         Lowercase of the single character (may be longer, e.g. U+0130)
Surrogates are not characters: UTF-8 decoding in lorascope never produces them.
"""
import functools
import os
import sys

import tokenizers
from tokenizers import AddedToken, Regex, Tokenizer, models
from tokenizers import normalizers as nm
from tokenizers import pre_tokenizers as pt

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "unicode_tables.inc")
CPS = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
ALL = "".join(chr(c) for c in CPS)
# General categories in the order of lorascope::unicode::Gc (data/unicode.h).
GCS = ["Cn", "Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd", "Nl", "No", "Pc", "Pd", "Ps", "Pe",
       "Pi", "Pf", "Po", "Sm", "Sc", "Sk", "So", "Zs", "Zl", "Zp", "Cc", "Cf", "Cs", "Co"]


def regex_set(pattern):
    """Code points matched by a single-character regex in a Split pre-tokenizer."""
    kept = pt.Split(Regex(pattern), behavior="removed").pre_tokenize_str(ALL)
    hit = [True] * len(CPS)
    for _, (b, e) in kept:
        for i in range(b, e):
            hit[i] = False
    return {CPS[i] for i in range(len(CPS)) if hit[i]}


def main():
    print(f"unicode_tables: tokenizers {tokenizers.__version__}", file=sys.stderr)
    gc = {}
    for k, name in enumerate(GCS):
        if name in ("Cn", "Cs"):
            continue
        for c in regex_set(r"\p{" + name + "}"):
            if c in gc:
                raise SystemExit(f"U+{c:04X} is in both {GCS[gc[c]]} and {name}")
            gc[c] = k
    unassigned = regex_set(r"\p{Cn}")
    for c in CPS:
        if c not in gc and c not in unassigned:
            raise SystemExit(f"U+{c:04X} has no general category")
    re_space, re_digit, re_word = regex_set(r"\s"), regex_set(r"\d"), regex_set(r"\w")
    print(f"  regex: {len(gc)} assigned, \\s {len(re_space)}, \\d {len(re_digit)}, \\w {len(re_word)}; "
          f"U+11F50 (15.0) {GCS[gc.get(0x11F50, 0)]}, U+10D40 (16.0) {GCS[gc.get(0x10D40, 0)]}", file=sys.stderr)

    def bert(clean=False, chinese=False, strip=False, lower=False):
        return nm.BertNormalizer(clean_text=clean, handle_chinese_chars=chinese, strip_accents=strip,
                                 lowercase=lower).normalize_str

    clean, chinese, strip = bert(clean=True), bert(chinese=True), bert(strip=True)
    nfd, lower = nm.NFD().normalize_str, nm.Lowercase().normalize_str
    bert_pre = pt.BertPreTokenizer().pre_tokenize_str
    word_tok = Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    word_tok.add_tokens([AddedToken("<m>", single_word=True)])
    space_tok = Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    space_tok.add_tokens([AddedToken("<m>", lstrip=True)])

    props, decomp, lowers, mn = {}, {}, {}, set()
    for c in CPS:
        ch = chr(c)
        r = clean("a" + ch + "b")
        bert_clean = {"a" + ch + "b": 0, "ab": 1, "a b": 2}.get(r)
        if bert_clean is None or (c == 0x20 and bert_clean != 2):
            raise SystemExit(f"U+{c:04X}: clean_text gave {r!r}")
        pieces = [p for p, _ in bert_pre("a" + ch + "b")]
        bert_split = {1: 0, 2: 1, 3: 2}[len(pieces)]
        is_chinese = chinese(ch) == " " + ch + " "
        d = nfd(ch)
        if d != ch:
            decomp[c] = d
        elif strip(ch) == "":
            mn.add(c)
        lo = lower(ch)
        if lo != ch:
            lowers[c] = lo
        ids = word_tok.encode(ch + "<m>").ids
        tok_word = 1 not in ids
        enc = space_tok.encode("x" + ch + "<m>")
        (start, _), = [o for i, o in zip(enc.ids, enc.offsets) if i == 1]
        tok_space = start == 1
        props[c] = [gc.get(c, 0), c in re_space, c in re_digit, c in re_word, bert_clean, bert_split,
                    is_chinese, False, tok_word, tok_space, 0]
    for c in mn:
        props[c][7] = True
    # strip_accents of one character must be its decomposition without the Mn marks.
    for c in CPS:
        expect = "".join(x for x in decomp.get(c, chr(c)) if ord(x) not in mn)
        if strip(chr(c)) != expect:
            raise SystemExit(f"U+{c:04X}: strip_accents gave {strip(chr(c))!r}, expected {expect!r}")
    # Hangul syllables decompose by formula (data/unicode.cpp), not by table.
    for c in range(0xAC00, 0xD7A4):
        s = c - 0xAC00
        want = chr(0x1100 + s // 588) + chr(0x1161 + (s % 588) // 28) + (chr(0x11A7 + s % 28) if s % 28 else "")
        if decomp.pop(c) != want:
            raise SystemExit(f"U+{c:04X}: Hangul NFD differs from the formula")

    # Canonical ordering: c is a non-starter when NFD moves it past U+0334 (class 1) or U+0301
    # (class 230) moves past it; the non-starters are then sorted by the same test.
    fixed = [c for c in CPS if c not in decomp and not 0xAC00 <= c < 0xD7A4]
    nonstarters = [c for c in fixed
                   if nfd(chr(c) + "\u0334") == "\u0334" + chr(c) or nfd("\u0301" + chr(c)) == chr(c) + "\u0301"
                   or c in (0x0334, 0x0301)]

    def cmp(a, b):
        if nfd(chr(a) + chr(b)) == chr(b) + chr(a):
            return 1
        if nfd(chr(b) + chr(a)) == chr(a) + chr(b):
            return -1
        return 0

    nonstarters.sort(key=functools.cmp_to_key(cmp))
    rank = 1
    for i, c in enumerate(nonstarters):
        if i > 0:
            order = cmp(nonstarters[i - 1], c)
            if order > 0:
                raise SystemExit("canonical classes are not totally ordered")
            rank += order < 0
        props[c][10] = rank
    if rank > 255:
        raise SystemExit(f"{rank} combining classes do not fit a byte")
    for a, b in zip(nonstarters, nonstarters[1:]):  # spot check of the ranks against NFD itself
        assert (props[a][10] < props[b][10]) == (nfd(chr(b) + chr(a)) == chr(a) + chr(b))
    punct_p = {c for c in CPS if props[c][5] == 2}
    regex_p = {c for c in CPS if GCS[props[c][0]][0] == "P"}
    print(f"  BERT: {sum(p[4] == 1 for p in props.values())} removed, {sum(p[4] == 2 for p in props.values())} to space, "
          f"{len(punct_p)} punctuation ({len(regex_p - punct_p)} \\p{{P}} not punctuation, e.g. "
          f"{', '.join(f'U+{c:04X}' for c in sorted(regex_p - punct_p)[:4])}), {len(mn)} Mn; "
          f"{len(decomp)} decompositions, {len(lowers)} lowercase mappings, {len(nonstarters)} non-starters in "
          f"{rank} classes", file=sys.stderr)

    def pack(p):
        g, s, d, w, bc, bs, ch, m, tw, ts, cr = p
        return (g | s << 5 | d << 6 | w << 7 | bc << 8 | bs << 10 | ch << 12 | m << 13 | tw << 14 | ts << 15
                | cr << 16)

    ranges, prev = [], None
    for c in range(0x110000):
        v = pack(props[c]) if c in props else 28  # a surrogate: Cs, nothing else
        if v != prev:
            ranges.append((c, v))
            prev = v

    def mapping(name, table):
        keys = sorted(table)
        pool, rows = [], []
        for k in keys:
            rows.append(f"{{0x{k:X}, {len(pool)}, {len(table[k])}}}")
            pool += [ord(x) for x in table[k]]
        return (f"const Mapping k{name}[] = {{\n" + wrap(rows) + "};\n"
                f"const char32_t k{name}Pool[] = {{\n" + wrap([f"0x{x:X}" for x in pool]) + "};\n")

    with open(OUT, "w", encoding="ascii", newline="\n") as f:
        f.write(f"// Generated by data/unicode_tables.py from tokenizers {tokenizers.__version__}; do not edit.\n"
                "// Property ranges: kStarts[i] is the first code point of a range whose packed\n"
                "// properties (data/unicode.cpp: unpack) are kValues[i]; the range ends at kStarts[i + 1].\n")
        f.write(f"const char32_t kStarts[] = {{\n" + wrap([f"0x{c:X}" for c, _ in ranges]) + "};\n")
        f.write(f"const uint32_t kValues[] = {{\n" + wrap([f"0x{v:X}" for _, v in ranges]) + "};\n")
        f.write(mapping("Decomposition", decomp))
        f.write(mapping("Lowercase", lowers))
    print(f"unicode_tables: {len(ranges)} ranges -> {OUT}", file=sys.stderr)


def wrap(items, width=100):
    lines, line = [], "   "
    for it in items:
        if len(line) + len(it) + 2 > width:
            lines.append(line)
            line = "   "
        line += " " + it + ","
    lines.append(line)
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
