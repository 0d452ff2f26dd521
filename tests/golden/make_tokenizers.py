#!/usr/bin/env python3
"""Writes tests/golden/tokenizers/: small tokenizer files in the formats real models ship, made
by the `tokenizers` library itself (trained here on a few hundred Brown lines, tiny
vocabularies), and the ids `tokenizers` gives for a set of texts, so that the default test suite
(tests/test_wordpiece_tokenizer.cpp, tests/test_bpe_tokenizer.cpp) checks lorascope token for
token without the reference venv.

    PY=$(bash scripts/reference_env.sh | tail -1)
    OMP_NUM_THREADS=1 $PY tests/golden/make_tokenizers.py [--data .cache/data]

Files (tests/golden/tokenizers/):
  wordpiece.json       BERT-style WordPiece: BertNormalizer (lowercase), BertPreTokenizer,
                       TemplateProcessing [CLS] $A [SEP] / [CLS] $A [SEP] $B:1 [SEP]:1 (as MiniLM)
  wordpiece_vocab.txt  the same vocabulary as a BERT vocab.txt (BertWordPieceTokenizer defaults)
  roberta.json         GPT-2 / RoBERTa byte-level BPE: ByteLevel pre-tokenizer, "a b" merges,
                       <mask> with lstrip (swallows the space before it), a rstrip and a
                       single_word added token, RobertaProcessing
  llama3.json          LLaMA-3 style: Split(regex, Isolated) + ByteLevel(use_regex false),
                       ignore_merges, an empty Sequence normalizer, TemplateProcessing with bos
  o200k.json           o200k-style Split(regex with \p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}, Isolated)
  cl100k_removed.json  cl100k regex as Split(Removed, invert true), NFD + Lowercase normalizer and a
                       normalized added token
  llama2.json          LLaMA-2 style sentencepiece BPE: Prepend + Replace normalizers, no
                       pre-tokenizer, byte_fallback with <0x00>..<0xFF>, fuse_unk
  mistral.json         the same model with Metaspace(prepend_scheme "first", split false)
  cases.json           {"texts": [...], "cases": [{"file", "text", "pair", "max_len", "special",
                       "ids", "type_ids"}]}: the encoding of texts[text] (and texts[pair]) by
                       `tokenizers`; special = add_special_tokens; max_len > 0 =
                       enable_truncation(max_len)
"""
import argparse
import json
import os
import re

import tokenizers
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from tokenizers.implementations import BertWordPieceTokenizer, ByteLevelBPETokenizer

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tokenizers")

# Hard text: every kind of whitespace, control and format characters, many scripts, accents and
# combining marks (in non-canonical order too), emoji with ZWJ, Unicode 15/16 characters, long
# words, special tokens inside text.
HARD = [
    "Hello, World! It's a caf\u00e9 na\u00efve r\u00e9sum\u00e9 -- 3.14159 $100 50% #1 @user e-mail.",
    "tab\tnewline-less\u00a0nbsp\u2003em\u3000ideographic\u2028line\u2029para\u0085nel\u000bvt\u000cff end",
    "ctrl\u0001\u0002\u001f\u007fdel\u200bzwsp\u200dzwj\u00adsoft\ufeffbom\ue000pua\ufffdrepl x",
    "\u4e2d\u6587\u5b57\u7b26 \u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8 \ud55c\uad6d\uc5b4 \u0e20\u0e32\u0e29\u0e32\u0e44\u0e17\u0e22",
    "\u0627\u0644\u0639\u0631\u0628\u064a\u0629 \u05e2\u05d1\u05e8\u05d9\u05ea \u0939\u093f\u0928\u094d\u0926\u0940 \u0440\u0443\u0441\u0441\u043a\u0438\u0439 \u0395\u039b\u039b\u0397\u039d\u0399\u039a\u0391 \u03a3\u039f\u03a6\u039f\u03a3",
    "emoji \U0001f600\U0001f469\u200d\U0001f4bb \U0001f1eb\U0001f1f7 \U0001f44d\U0001f3fd \u2764\ufe0f family \U0001f468\u200d\U0001f469\u200d\U0001f467",
    "unicode15 \U00011f50\U00011f51\U00011f59 kawi, unicode16 \U00010d40\U00010d49 garay \U00031350 ext-h \U0001e5d0 ol-onal",
    "marks a\u0301\u0316 e\u0316\u0301 \u1e69 \u0130stanbul \u212b \U0001d165\U0001d16d\U0001d165 combining\u0300\u0301\u0302",
    "supercalifragilisticexpialidocious" * 4 + " " + "x" * 120,
    "[CLS] special [MASK] tokens [SEP] inside [mask] text [PAD][UNK]",
    "  leading and trailing spaces  ",
    "",
    "\u00bfQu\u00e9? \u00a1S\u00ed! \u00ab\u00bb \u2018quoted\u2019 \u201cdouble\u201d \u2026 \u2014 \u00a7 \u00b6 \u2020",
]
# Texts for the BPE files: added-token flags, contractions, numbers, a long word.
BPE_EXTRA = [
    "The <mask> sat.", "The<mask>sat.", "a  <mask>  b <mask>", "<s>hello</s> <s> world</s>",
    "<|begin_of_text|>Hi there<|eot_id|>", "[rstrip]   next [rstrip]", "word words sword word. word",
    "Hello World HELLO WORLD hello world", "don't I'LL we've THEY'RE 1234567 12 3.5",
    "x" * 300 + " " + "ab" * 60, "line one\nline two\r\n\n  indented\ttab",
]
LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
                r"\s*[\r\n]+|\s+(?!\S)|\s+")
O200K_REGEX = "|".join([
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    r"\p{N}{1,3}", r" ?[^\s\p{L}\p{N}]+[\r\n/]*", r"\s*[\r\n]+", r"\s+(?!\S)", r"\s+"])
PAIRS = [("A short question?", "And a somewhat longer answer to it, with words."),
         ("caf\u00e9 \u4e2d\u6587", "[MASK] the rest"), ("", "only the second")]


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


def cases_for(name, tok, texts, pairs):
    tok.no_padding()
    out = []
    tok.no_truncation()
    for special, some in ((False, texts), (True, texts[:4] + texts[-3:])):
        for t in some:
            e = tok.encode(t, add_special_tokens=special)
            out.append({"file": name, "text": t, "pair": None, "max_len": 0, "special": special, "ids": e.ids,
                        "type_ids": e.type_ids})
    tok.no_truncation()
    for a, b in pairs:
        e = tok.encode(a, b, add_special_tokens=True)
        out.append({"file": name, "text": a, "pair": b, "max_len": 0, "special": True, "ids": e.ids, "type_ids": e.type_ids})
    for max_len in (5, 8, 12):
        tok.enable_truncation(max_len)
        for t in texts[:3]:
            e = tok.encode(t, add_special_tokens=True)
            out.append({"file": name, "text": t, "pair": None, "max_len": max_len, "special": True, "ids": e.ids,
                        "type_ids": e.type_ids})
        for a, b in pairs:
            e = tok.encode(a, b, add_special_tokens=True)
            out.append({"file": name, "text": a, "pair": b, "max_len": max_len, "special": True, "ids": e.ids,
                        "type_ids": e.type_ids})
    tok.no_truncation()
    return out


def wordpiece(lines, out, vocab_size=400):
    """Writes wordpiece.json and wordpiece_vocab.txt to out; returns [(name, tokenizers.Tokenizer)]."""
    bert = BertWordPieceTokenizer(lowercase=True)
    bert.train_from_iterator(lines, vocab_size=vocab_size, min_frequency=2, limit_alphabet=200,
                             special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    bert.save_model(out, "wordpiece")  # wordpiece-vocab.txt
    os.replace(os.path.join(out, "wordpiece-vocab.txt"), os.path.join(out, "wordpiece_vocab.txt"))
    tok = Tokenizer.from_str(bert.to_str())
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
                                                       special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    tok.save(os.path.join(out, "wordpiece.json"))
    from_vocab = BertWordPieceTokenizer(os.path.join(out, "wordpiece_vocab.txt"))
    return [("wordpiece.json", Tokenizer.from_file(os.path.join(out, "wordpiece.json"))),
            ("wordpiece_vocab.txt", from_vocab._tokenizer)]


def byte_level_bpe(lines, pre_tokenizer, normalizer, ignore_merges, vocab_size):
    tok = Tokenizer(models.BPE(ignore_merges=ignore_merges))
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(lines, trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False,
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return tok


def save(tok, out, name):
    path = os.path.join(out, name)
    tok.save(path)
    return name, Tokenizer.from_file(path)


def bpe_files(lines, out_dir, vocab_size=500):
    """Writes the BPE files to out_dir; returns [(name, tokenizers.Tokenizer)]."""
    out = []
    # GPT-2 / RoBERTa: "a b" merges (legacy format), <mask> lstrip.
    roberta = ByteLevelBPETokenizer(add_prefix_space=False)
    roberta.train_from_iterator(lines, vocab_size=vocab_size, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
                                show_progress=False)
    tok = Tokenizer.from_str(roberta.to_str())
    tok.add_special_tokens([AddedToken("<mask>", lstrip=True, normalized=False)])
    tok.add_tokens([AddedToken("[rstrip]", rstrip=True), AddedToken("word", single_word=True)])
    tok.post_processor = processors.RobertaProcessing(("</s>", tok.token_to_id("</s>")), ("<s>", tok.token_to_id("<s>")))
    j = json.loads(tok.to_str())
    j["model"]["merges"] = [" ".join(m) for m in j["model"]["merges"]]
    with open(os.path.join(out_dir, "roberta.json"), "w", encoding="utf-8") as f:
        json.dump(j, f, ensure_ascii=False)
    out.append(("roberta.json", Tokenizer.from_file(os.path.join(out_dir, "roberta.json"))))
    # LLaMA-3: Split(Isolated) + ByteLevel without regex, ignore_merges, bos template.
    tok = byte_level_bpe(lines, pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]), normalizers.Sequence([]), True, vocab_size)
    tok.add_special_tokens(["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"])
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|>:1 $B:1",
                                      special_tokens=[("<|begin_of_text|>", bos)])])
    out.append(save(tok, out_dir, "llama3.json"))
    # o200k-style regex, Split Isolated.
    tok = byte_level_bpe(lines, pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(O200K_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]), None, False, vocab_size)
    tok.add_special_tokens(["<|endoftext|>"])
    out.append(save(tok, out_dir, "o200k.json"))
    # cl100k regex as Split(Removed, invert), a normalizer and a normalized added token.
    tok = byte_level_bpe(lines, pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_REGEX), behavior="removed", invert=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]),
        normalizers.Sequence([normalizers.NFD(), normalizers.Lowercase()]), False, vocab_size)
    tok.add_tokens([AddedToken("Hello World", normalized=True)])
    tok.add_special_tokens(["<|endoftext|>"])
    out.append(save(tok, out_dir, "cl100k_removed.json"))
    # LLaMA-2: sentencepiece-style BPE with byte fallback.
    trained = Tokenizer(models.BPE(unk_token="<unk>"))
    trained.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
    trained.train_from_iterator(lines, trainers.BpeTrainer(vocab_size=vocab_size - 100, limit_alphabet=60, show_progress=False,
                                                           special_tokens=["<unk>", "<s>", "</s>"]))
    tj = json.loads(trained.to_str())
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    for t, _ in sorted(tj["model"]["vocab"].items(), key=lambda kv: kv[1]):
        vocab.setdefault(t, len(vocab))
    merges = [tuple(m) for m in tj["model"]["merges"]]
    for name, normalizer, pre in [
            ("llama2.json", normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")]), None),
            ("mistral.json", None, pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first", split=False))]:
        tok = Tokenizer(models.BPE(vocab, merges, unk_token="<unk>", byte_fallback=True, fuse_unk=True))
        tok.normalizer = normalizer
        tok.pre_tokenizer = pre
        tok.add_special_tokens([AddedToken(t, normalized=False) for t in ("<unk>", "<s>", "</s>")])
        tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s>:1 $B:1",
                                                           special_tokens=[("<s>", 1)])
        tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse(),
                                         decoders.Strip(" ", 1, 0)])
        out.append(save(tok, out_dir, name))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.environ.get("LORASCOPE_DATA_DIR", ".cache/data"))
    a = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    lines = brown_lines(a.data, 600)
    texts = lines[:12] + HARD
    cases = []
    for name, tok in wordpiece(lines, OUT):
        cases += cases_for(name, tok, texts, PAIRS)
    for name, tok in bpe_files(lines, OUT):
        cases += cases_for(name, tok, texts + BPE_EXTRA, PAIRS)
    index = {}
    for c in cases:  # each text once, cases refer to it by index
        for key in ("text", "pair"):
            if c[key] is not None:
                c[key] = index.setdefault(c[key], len(index))
    with open(os.path.join(OUT, "cases.json"), "w", encoding="utf-8") as f:
        json.dump({"tokenizers": tokenizers.__version__, "texts": list(index), "cases": cases}, f, ensure_ascii=True,
                  indent=None)
        f.write("\n")
    print(f"make_tokenizers: {len(cases)} cases -> {OUT}")


if __name__ == "__main__":
    main()
