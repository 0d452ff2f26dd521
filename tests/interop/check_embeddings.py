#!/usr/bin/env python3
"""lorascope's BERT encoder and sentence embeddings against transformers (interop suite).

    $PY tests/interop/check_embeddings.py --lorascope build/lorascope --work /tmp/w --data .cache/data \
        [--model .cache/models/all-MiniLM-L6-v2] [--sentences 300]

`lorascope hf embed` and transformers' AutoModel read the same checkpoint directory and the same
token ids (the `tokenizers` library on the model's tokenizer.json, padded batches with attention
masks). The reference embedding is sentence-transformers' recipe written out with torch (it is not
in the venv): mean over the unmasked tokens, sum(m h) / max(sum m, 1e-9), then
F.normalize(p=2). Errors are relative per row: ||a_i - b_i||_2 / ||b_i||_2 over sentences (and
over real tokens for the hidden states); the largest one seen is printed.

Checks:
  tiny_*    a small random BertModel (from_config, with its pooler and MiniLM's modules.json) and
            the WordPiece tokenizer of tests/golden/minilm, on the real sentences: last hidden
            states, mean + normalize, cls, pooler output. Always run.
  minilm_*  the real all-MiniLM-L6-v2 (scripts/fetch_model.sh) on a few hundred sentences of
            Brown, SpamAssassin and Moby-Dick: last hidden states and the normalized mean-pooled
            embeddings (the checkpoint's own modules.json, nothing forced). SKIP when not fetched.
"""
import argparse
import json
import os
import re
import subprocess
import sys

import torch
from safetensors.torch import load_file
from tokenizers import Tokenizer
from transformers import AutoModel, BertConfig, BertModel

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOL = 1e-5
FAILED = []


def report(name, err, tol=TOL):
    ok = err <= tol
    if not ok:
        FAILED.append(name)
    print(f"{'PASS' if ok else 'FAIL'} {name}: max relative error {err:.3g} (tolerance {tol:g})", flush=True)


# ---------------------------------------------------------------------------------------------
# Sentences: deterministic picks from the three corpora (whole lines / sentences, not empty).

def brown(root, n):
    files = sorted(f for f in os.listdir(root) if re.fullmatch(r"c[a-r]\d\d", f))
    out = []
    for name in files:
        with open(os.path.join(root, name), encoding="utf-8", errors="replace") as f:
            for line in f:
                text = " ".join(w.rsplit("/", 1)[0] for w in line.split()).strip()
                if len(text) > 20:
                    out.append(text)
    return out[:: max(1, len(out) // n)][:n]


def spam(root, n):
    out = []
    for group in ("easy-ham-1", "hard-ham-1", "spam-1", "spam-2"):
        d = os.path.join(root, "data", group)
        if not os.path.isdir(d):
            continue
        for name in sorted(os.listdir(d))[:40]:
            if name.endswith(".txt"):
                with open(os.path.join(d, name), "rb") as f:
                    text = f.read().decode("utf-8", errors="replace")
                out += [l for l in text.replace("\r", "\n").split("\n") if len(l.strip()) > 20]
    return out[:: max(1, len(out) // n)][:n]


def moby(root, n):
    out = []
    d = os.path.join(root, "data")
    for name in sorted(f for f in os.listdir(d) if re.fullmatch(r"chapter_\d+\.json", f)):
        with open(os.path.join(d, name), encoding="utf-8") as f:
            text = json.load(f)["text"]
        out += [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if len(s.strip()) > 20]
    return out[:: max(1, len(out) // n)][:n]


def sentences(data, n):
    out = []
    for name, fn in (("brown", brown), ("spam-assassin", spam), ("moby-dick", moby)):
        if os.path.isdir(os.path.join(data, name)):
            out += fn(os.path.join(data, name), n // 3)
    return out


# ---------------------------------------------------------------------------------------------

def batches(tok, texts, size, max_len):
    tok.no_padding()
    tok.enable_truncation(max_length=max_len)
    for i in range(0, len(texts), size):
        enc = tok.encode_batch(texts[i:i + size])
        T = max(len(e.ids) for e in enc)
        ids = [e.ids + [0] * (T - len(e.ids)) for e in enc]
        mask = [e.attention_mask + [0] * (T - len(e.ids)) for e in enc]
        types = [e.type_ids + [0] * (T - len(e.ids)) for e in enc]
        yield ids, mask, types


def lorascope_embed(exe, model_dir, ids, mask, work, tag, *flags):
    ids_path = os.path.join(work, f"ids_{tag}.json")
    out = os.path.join(work, f"embed_{tag}.safetensors")
    with open(ids_path, "w") as f:
        json.dump({"input_ids": ids, "attention_mask": mask}, f)
    cmd = [exe, "--threads", os.environ.get("OMP_NUM_THREADS", "2"), "hf", "embed", "--model", model_dir,
           "--ids", ids_path, "--out", out, *flags]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)  # bounded: a hang fails the check
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {p.returncode}: {p.stderr.strip()[-600:]}")
    return load_file(out)


def row_rel(a, b):  # (N, C) -> max over rows of ||a - b|| / ||b||
    return float(((a.double() - b.double()).norm(dim=-1) / b.double().norm(dim=-1).clamp_min(1e-30)).max())


def token_rel(a, b, mask):  # (B, T, C) over real tokens
    keep = mask.bool()
    return row_rel(a[keep], b[keep])


def reference(model, ids, mask, types):
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, token_type_ids=types)
    h = out.last_hidden_state
    m = mask.unsqueeze(-1).to(h.dtype)
    mean = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
    return h, mean, torch.nn.functional.normalize(mean, p=2, dim=1), out.pooler_output


def check_tiny(exe, work, texts):
    tok = Tokenizer.from_file(os.path.join(REPO, "tests", "golden", "minilm", "model", "tokenizer.json"))
    torch.manual_seed(1)
    cfg = BertConfig(vocab_size=tok.get_vocab_size(), hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=128, max_position_embeddings=128, type_vocab_size=2, initializer_range=0.1)
    cfg.architectures = ["BertModel"]
    model_dir = os.path.join(work, "tiny_bert")
    BertModel(cfg).eval().save_pretrained(model_dir)
    os.makedirs(os.path.join(model_dir, "1_Pooling"), exist_ok=True)
    with open(os.path.join(model_dir, "modules.json"), "w") as f:
        json.dump([{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                   {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
                   {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}], f)
    with open(os.path.join(model_dir, "1_Pooling", "config.json"), "w") as f:
        json.dump({"word_embedding_dimension": 64, "pooling_mode_mean_tokens": True, "pooling_mode_cls_token": False}, f)
    model = AutoModel.from_pretrained(model_dir).eval()
    errs = {"tiny_hidden": 0.0, "tiny_mean_normalized": 0.0, "tiny_cls": 0.0, "tiny_pooler": 0.0}
    for k, (ids, mask, types) in enumerate(batches(tok, texts[:96], 32, 96)):
        h, _, emb, pooler = reference(model, torch.tensor(ids), torch.tensor(mask), torch.tensor(types))
        got = lorascope_embed(exe, model_dir, ids, mask, work, f"tiny{k}")
        errs["tiny_hidden"] = max(errs["tiny_hidden"], token_rel(got["last_hidden_state"], h, torch.tensor(mask)))
        errs["tiny_mean_normalized"] = max(errs["tiny_mean_normalized"], row_rel(got["embeddings"], emb))
        cls = lorascope_embed(exe, model_dir, ids, mask, work, f"tinycls{k}", "--pooling", "cls", "--no-normalize")
        errs["tiny_cls"] = max(errs["tiny_cls"], row_rel(cls["embeddings"], h[:, 0]))
        pool = lorascope_embed(exe, model_dir, ids, mask, work, f"tinypool{k}", "--pooling", "pooler", "--no-normalize")
        errs["tiny_pooler"] = max(errs["tiny_pooler"], row_rel(pool["embeddings"], pooler))
    for name, err in errs.items():
        report(name, err)


def check_minilm(exe, work, texts, model_dir, max_len):
    if not os.path.isfile(os.path.join(model_dir, "model.safetensors")):
        print(f"SKIP minilm: {model_dir} not fetched (bash scripts/fetch_model.sh)", flush=True)
        return
    tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    model = AutoModel.from_pretrained(model_dir).eval()
    hidden = embed = 0.0
    n = 0
    for k, (ids, mask, types) in enumerate(batches(tok, texts, 32, max_len)):
        h, _, emb, _ = reference(model, torch.tensor(ids), torch.tensor(mask), torch.tensor(types))
        got = lorascope_embed(exe, model_dir, ids, mask, work, f"minilm{k}")
        hidden = max(hidden, token_rel(got["last_hidden_state"], h, torch.tensor(mask)))
        embed = max(embed, row_rel(got["embeddings"], emb))
        n += len(ids)
    report(f"minilm_hidden ({n} sentences)", hidden)
    report(f"minilm_mean_normalized ({n} sentences)", embed)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lorascope", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--model", default=os.path.join(os.environ.get("LORASCOPE_MODELS_DIR",
                                                                   os.path.join(REPO, ".cache", "models")),
                                                    "all-MiniLM-L6-v2"))
    ap.add_argument("--sentences", type=int, default=300)
    ap.add_argument("--max-len", type=int, default=128)
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    texts = sentences(a.data, a.sentences)
    if not texts:
        print(f"SKIP embeddings: no Brown / SpamAssassin / Moby-Dick under {a.data} (scripts/fetch_data.sh)")
        return 0
    for name, check in (("tiny", lambda: check_tiny(a.lorascope, a.work, texts)),
                        ("minilm", lambda: check_minilm(a.lorascope, a.work, texts, a.model, a.max_len))):
        try:
            check()
        except Exception as e:  # one broken check must not hide the others
            FAILED.append(name)
            print(f"FAIL {name}: {type(e).__name__}: {str(e)[-400:]} (tolerance {TOL:g})", flush=True)
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
