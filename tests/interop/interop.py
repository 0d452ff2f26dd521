#!/usr/bin/env python3
"""lorascope against transformers, peft, tokenizers and sentencepiece, on the GPU machine.

    bash tests/interop/run_all.sh          # builds lorascope, then runs this file

Checks (each one row of the PASS/FAIL table; a failing check does not stop the others):
  logits   transformers builds randomly initialised models from the real configs (LLaMA-3.2-1B
           and TinyLlama with fewer layers, roberta-base for sequence classification), saves
           them (safetensors, float32), and lorascope loads each directory and computes logits
           on the same token ids (one row right-padded). float32: max|a - b| / max|b| <= 1e-4.
           bfloat16 (both sides cast the whole model, as torch_dtype=bfloat16 does): lorascope's
           error against transformers' float32 logits must be at most max(2 x transformers' own
           bf16 error, 1e-2), in the same max-norm relative measure.
  peft     lorascope exports a random adapter (nonzero B) and PeftModel.from_pretrained reproduces
           lorascope's logits; peft saves a random adapter (init_lora_weights=False) and lorascope
           loads it and reproduces peft's logits (1e-4 relative, float32). RoBERTa runs as SEQ_CLS
           with the classifier in modules_to_save (and rslora on the peft-saved adapter).
  bpe      byte-level BPE tokenizer.json files trained here with `tokenizers` (GPT-2 style with
           and without add_prefix_space, LLaMA-3 style Split + ByteLevel + ignore_merges) encode
           every line of Brown / SpamAssassin (tests/interop/prepare_lines.py) exactly as
           `tokenizers` does (add_special_tokens=False): token for token, all lines.
  spm      a sentencepiece model trained here on the same lines, same comparison.
Results also go to $OUT/interop_results.json when OUT is set.
"""
import argparse
import copy
import json
import os
import subprocess
import sys
import time
import traceback

RESULTS = []


def record(name, ok, detail):
    RESULTS.append({"check": name, "status": "PASS" if ok else "FAIL", "detail": detail})
    print(f"[{'PASS' if ok else 'FAIL'}] {name}: {detail}", flush=True)


def guarded(name):
    def wrap(f):
        def run(*args, **kwargs):
            try:
                return f(*args, **kwargs)
            except Exception as e:  # one broken check must not hide the others
                traceback.print_exc()
                record(name, False, f"{type(e).__name__}: {e}"[:300])
        return run
    return wrap


def lorascope(exe, *args):
    cmd = [exe, "--threads", "8", *args]
    t = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)  # a hang must not eat the lease
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {p.returncode}: {p.stderr.strip()[-800:]}")
    return time.time() - t


# ---------------------------------------------------------------------------------------------
# Model configs, as on the Hub (written out: nothing can be downloaded on that machine).

LLAMA32_1B = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "attention_bias": False, "attention_dropout": 0.0,
    "bos_token_id": 128000, "eos_token_id": 128001, "head_dim": 64, "hidden_act": "silu", "hidden_size": 2048,
    "initializer_range": 0.02, "intermediate_size": 8192, "max_position_embeddings": 131072, "mlp_bias": False,
    "num_attention_heads": 32, "num_hidden_layers": 16, "num_key_value_heads": 8, "pretraining_tp": 1,
    "rms_norm_eps": 1e-05,
    "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                     "original_max_position_embeddings": 8192, "rope_type": "llama3"},
    "rope_theta": 500000.0, "tie_word_embeddings": True, "use_cache": True, "vocab_size": 128256,
}
TINYLLAMA = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "attention_bias": False, "bos_token_id": 1,
    "eos_token_id": 2, "hidden_act": "silu", "hidden_size": 2048, "initializer_range": 0.02,
    "intermediate_size": 5632, "max_position_embeddings": 2048, "num_attention_heads": 32,
    "num_hidden_layers": 22, "num_key_value_heads": 4, "pretraining_tp": 1, "rms_norm_eps": 1e-05,
    "rope_scaling": None, "rope_theta": 10000.0, "tie_word_embeddings": False, "use_cache": True,
    "vocab_size": 32000,
}
ROBERTA_BASE = {
    "architectures": ["RobertaForMaskedLM"], "model_type": "roberta", "attention_probs_dropout_prob": 0.1,
    "bos_token_id": 0, "eos_token_id": 2, "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": 768,
    "initializer_range": 0.02, "intermediate_size": 3072, "layer_norm_eps": 1e-05, "max_position_embeddings": 514,
    "num_attention_heads": 12, "num_hidden_layers": 12, "pad_token_id": 1, "type_vocab_size": 1,
    "vocab_size": 50265,
}


def make_ids(vocab, pad_id, B=3, T=24, seed=0):
    """Token ids in [3, vocab) and a mask; the last row is right-padded (pad_id, mask 0)."""
    import torch
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, vocab, (B, T), generator=g)
    mask = torch.ones(B, T, dtype=torch.long)
    ids[-1, T - 7:] = pad_id
    mask[-1, T - 7:] = 0
    return ids, mask


def rel_err(a, b):
    """max |a - b| / max |b| over the positions that are not padding."""
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


def masked(logits, mask):
    # Causal-LM logits at padded positions are garbage on both sides; compare real tokens only.
    if logits.dim() == 3:
        return logits[mask.bool()]
    return logits


def build_hf(name, cfg_dict, layers, head, work):
    import torch
    import transformers
    cfg = dict(cfg_dict)
    if layers:
        cfg["num_hidden_layers"] = layers
    d = os.path.join(work, name)
    kwargs = {k: v for k, v in cfg.items() if k not in ("architectures", "model_type")}
    if head == "classification":
        config = transformers.RobertaConfig(**kwargs, num_labels=2)
        config.architectures = ["RobertaForSequenceClassification"]
        torch.manual_seed(0)
        model = transformers.RobertaForSequenceClassification(config)
    else:
        config = transformers.LlamaConfig(**kwargs)
        config.architectures = ["LlamaForCausalLM"]
        torch.manual_seed(0)
        model = transformers.LlamaForCausalLM(config)
    model = model.float().eval()
    model.save_pretrained(d)  # safetensors is the default (and the only format in transformers 5)
    with open(os.path.join(d, "config.json")) as f:
        saved = json.load(f)
    print(f"{name}: saved {sorted(os.listdir(d))}; rope {saved.get('rope_scaling') or saved.get('rope_parameters')}",
          flush=True)
    return model, d


def load_hf(d, head):
    """The saved directory read back by transformers (for peft: a fresh copy of the same weights)."""
    import torch
    import transformers
    cls = transformers.RobertaForSequenceClassification if head == "classification" else transformers.LlamaForCausalLM
    return cls.from_pretrained(d, dtype=torch.float32).eval()


def hf_logits(model, ids, mask, device, dtype):
    """Logits of model (moved to device; a bf16 run casts a copy, so the float32 weights stay)."""
    import torch
    m = model.to(device=device)
    if dtype != torch.float32:
        m = copy.deepcopy(m).to(dtype=dtype)
    m.eval()
    with torch.no_grad():
        out = m(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
    return out.float().cpu()


def ls_logits(exe, work, tag, model_dir, ids, mask, dtype, head, adapter=None):
    from safetensors.torch import load_file
    ids_path = os.path.join(work, f"{tag}_ids.json")
    with open(ids_path, "w") as f:
        json.dump({"input_ids": ids.tolist(), "attention_mask": mask.tolist()}, f)
    out = os.path.join(work, f"{tag}_{dtype}_logits.safetensors")
    args = ["hf", "logits", "--model", model_dir, "--ids", ids_path, "--out", out, "--device", "cuda",
            "--dtype", dtype, "--head", head]
    if adapter:
        args += ["--adapter", adapter]
    secs = lorascope(exe, *args)
    return load_file(out)["logits"], secs


MODELS = [
    # name, config, layers (None = all), head
    ("llama32_1b_4layers", LLAMA32_1B, 4, "causal_lm"),
    ("tinyllama_4layers", TINYLLAMA, 4, "causal_lm"),
    ("roberta_base", ROBERTA_BASE, None, "classification"),
]


def check_models(exe, work):
    import torch
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    built = {}
    for name, cfg, layers, head in MODELS:
        @guarded(f"logits {name} float32")
        def one():
            model, d = build_hf(name, cfg, layers, head, work)
            ids, mask = make_ids(cfg["vocab_size"], cfg.get("pad_token_id") or 0)
            ref32 = hf_logits(model, ids, mask, "cuda", torch.float32)
            ls32, secs = ls_logits(exe, work, name, d, ids, mask, "float32", head)
            e32 = rel_err(masked(ls32, mask), masked(ref32, mask))
            record(f"logits {name} float32", e32 <= 1e-4, f"rel err {e32:.2e} (<= 1e-4), logits {tuple(ref32.shape)}, lorascope {secs:.1f}s")
            ref16 = hf_logits(model, ids, mask, "cuda", torch.bfloat16)
            ls16, _ = ls_logits(exe, work, name, d, ids, mask, "bfloat16", head)
            e_hf = rel_err(masked(ref16, mask), masked(ref32, mask))
            e_ls = rel_err(masked(ls16, mask), masked(ref32, mask))
            tol = max(2 * e_hf, 1e-2)
            record(f"logits {name} bfloat16", e_ls <= tol,
                   f"lorascope bf16 vs fp32 {e_ls:.2e}, transformers bf16 vs fp32 {e_hf:.2e} (tol {tol:.2e})")
            built[name] = (model, d, ids, mask, head)
        one()
    return built


def check_peft(exe, work, built):
    import torch
    import peft
    from peft import LoraConfig, PeftModel, get_peft_model
    for name, targets, task in (("llama32_1b_4layers", ["q_proj", "v_proj"], "CAUSAL_LM"),
                                ("roberta_base", ["query", "value"], "SEQ_CLS")):
        if name not in built:
            record(f"peft {name}", False, "model check failed before")
            continue
        model, d, ids, mask, head = built[name]

        @guarded(f"peft lorascope->peft {name}")
        def export():
            adapter = os.path.join(work, f"{name}_ls_adapter")
            lorascope(exe, "hf", "random-adapter", "--model", d, "--out", adapter, "--head", head, "--r", "8",
                      "--alpha", "16", "--targets", ",".join(targets), "--seed", "1", "--b-std", "0.05")
            ls, _ = ls_logits(exe, work, f"{name}_lsadapter", d, ids, mask, "float32", head, adapter)
            pm = PeftModel.from_pretrained(load_hf(d, head), adapter).eval()
            ref = hf_logits(pm, ids, mask, "cuda", torch.float32)
            e = rel_err(masked(ls, mask), masked(ref, mask))
            moved = rel_err(masked(ref, mask), masked(hf_logits(model, ids, mask, "cuda", torch.float32), mask))
            record(f"peft lorascope->peft {name}", e <= 1e-4 and moved > 1e-3,
                   f"rel err {e:.2e} (<= 1e-4); the adapter moves the logits by {moved:.2e} (> 1e-3)")
        export()

        @guarded(f"peft peft->lorascope {name}")
        def import_():
            torch.manual_seed(2)
            cfg = LoraConfig(r=8, lora_alpha=16, target_modules=targets, lora_dropout=0.0, bias="none",
                             task_type=task, init_lora_weights=False, use_rslora=(task == "SEQ_CLS"))
            pm = get_peft_model(load_hf(d, head), cfg).eval()
            if task == "SEQ_CLS":  # a trained head: PEFT saves it through modules_to_save
                with torch.no_grad():
                    for n, p in pm.named_parameters():
                        if "modules_to_save" in n and "classifier" in n:
                            p.add_(0.05 * torch.randn_like(p))
            adapter = os.path.join(work, f"{name}_peft_adapter")
            pm.save_pretrained(adapter)
            ref = hf_logits(pm, ids, mask, "cuda", torch.float32)
            ls, _ = ls_logits(exe, work, f"{name}_peftadapter", d, ids, mask, "float32", head, adapter)
            e = rel_err(masked(ls, mask), masked(ref, mask))
            with open(os.path.join(adapter, "adapter_config.json")) as f:
                saved = json.load(f)
            record(f"peft peft->lorascope {name}", e <= 1e-4,
                   f"rel err {e:.2e} (<= 1e-4); peft {peft.__version__}, modules_to_save {saved.get('modules_to_save')}")
        import_()


# ---------------------------------------------------------------------------------------------
# Tokenizers

LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
                r"\s*[\r\n]+|\s+(?!\S)|\s+")


def read_lines(path):
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    return [l for l in lines if l]


def compare_ids(name, exe, work, tok_path, lines_path, expected):
    out = os.path.join(work, f"{name}_ids.jsonl")
    lorascope(exe, "hf", "tokenize", "--tokenizer", tok_path, "--in", lines_path, "--out", out)
    with open(out) as f:
        got = [json.loads(l) for l in f if l.strip()]
    if len(got) != len(expected):
        record(f"tokenizer {name}", False, f"{len(got)} lines from lorascope, {len(expected)} expected")
        return
    bad = [i for i, (a, b) in enumerate(zip(got, expected)) if a != b]
    tokens = sum(len(e) for e in expected)
    detail = f"{len(expected) - len(bad)}/{len(expected)} lines identical ({tokens} tokens)"
    if bad:
        i = bad[0]
        detail += f"; first mismatch line {i}: lorascope {got[i][:12]} vs {expected[i][:12]}"
    record(f"tokenizer {name}", not bad, detail)


def write_clean_lines(work, lines):
    """The file lorascope reads must hold exactly these lines, one per line, for both sides."""
    clean = os.path.join(work, "lines.txt")
    with open(clean, "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(lines) + "\n")
    return clean


def check_bpe(exe, work, lines_path):
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    import tokenizers
    lines = read_lines(lines_path)
    clean = write_clean_lines(work, lines)
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    for prefix in (False, True):
        name = f"gpt2_bytelevel{'_prefix' if prefix else ''}"

        @guarded(f"tokenizer {name}")
        def one():
            tok = Tokenizer(models.BPE())
            tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=prefix)
            tok.decoder = decoders.ByteLevel()
            trainer = trainers.BpeTrainer(vocab_size=4000, min_frequency=2, special_tokens=specials,
                                          initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
            tok.train_from_iterator(lines, trainer=trainer)
            path = os.path.join(work, f"{name}.json")
            tok.save(path)
            expected = [tok.encode(l, add_special_tokens=False).ids for l in lines]
            compare_ids(name, exe, work, path, clean, expected)
        one()

    @guarded("tokenizer llama3_split_ignore_merges")
    def llama3():
        try:
            model = models.BPE(ignore_merges=True)
        except TypeError:
            model = models.BPE()
            print(f"tokenizers {tokenizers.__version__} has no ignore_merges; testing without it")
        tok = Tokenizer(model)
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(pattern=Regex(LLAMA3_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=4000, min_frequency=2,
                                      special_tokens=["<|begin_of_text|>", "<|end_of_text|>"],
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        tok.train_from_iterator(lines, trainer=trainer)
        path = os.path.join(work, "llama3_style.json")
        tok.save(path)
        # Special tokens inside the text are cut out as added tokens on both sides.
        texts = lines + ["<|begin_of_text|>" + lines[0] + "<|end_of_text|>"]
        with open(os.path.join(work, "lines_special.txt"), "w", encoding="utf-8", newline="\n") as f:
            f.write("\n".join(texts) + "\n")
        expected = [tok.encode(l, add_special_tokens=False).ids for l in texts]
        compare_ids("llama3_split_ignore_merges", exe, work, path, os.path.join(work, "lines_special.txt"), expected)
    llama3()


@guarded("tokenizer sentencepiece")
def check_spm(exe, work, lines_path):
    import sentencepiece as spm
    lines = read_lines(lines_path)
    prefix = os.path.join(work, "spm")
    spm.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_prefix=prefix, vocab_size=2000,
                                   model_type="unigram", character_coverage=1.0, num_threads=4,
                                   pad_id=0, unk_id=1, bos_id=2, eos_id=3)
    sp = spm.SentencePieceProcessor(model_file=prefix + ".model")
    expected = [sp.encode(l) for l in lines]
    compare_ids("sentencepiece", exe, work, prefix + ".model", write_clean_lines(work, lines), expected)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lorascope", required=True)
    ap.add_argument("--work", default="/tmp/lorascope_interop")
    ap.add_argument("--lines", required=True)
    ap.add_argument("--only", default="models,peft,bpe,spm")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    only = set(a.only.split(","))
    versions = {}
    for mod in ("torch", "transformers", "peft", "tokenizers", "sentencepiece", "safetensors"):
        try:
            versions[mod] = __import__(mod).__version__
        except Exception as e:  # noqa: BLE001
            versions[mod] = f"missing ({e})"
    print("versions:", versions, flush=True)
    t0 = time.time()
    if "bpe" in only:
        check_bpe(a.lorascope, a.work, a.lines)
    if "spm" in only:
        check_spm(a.lorascope, a.work, a.lines)
    built = {}
    if "models" in only or "peft" in only:
        built = check_models(a.lorascope, a.work)
    if "peft" in only:
        check_peft(a.lorascope, a.work, built)
    print(f"\n{'check':<44} {'status':<6} detail")
    for r in RESULTS:
        print(f"{r['check']:<44} {r['status']:<6} {r['detail']}")
    failed = sum(r["status"] == "FAIL" for r in RESULTS)
    print(f"\n{len(RESULTS) - failed} passed, {failed} failed  ({time.time() - t0:.0f}s)")
    if os.environ.get("OUT"):
        with open(os.path.join(os.environ["OUT"], "interop_results.json"), "w") as f:
            json.dump({"versions": versions, "results": RESULTS}, f, indent=1)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
