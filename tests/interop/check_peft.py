#!/usr/bin/env python3
"""PEFT adapters, both ways, and merging, against peft itself.

  lorascope -> PEFT  `lorascope hf random-adapter` writes an adapter (random nonzero B, PEFT's
                     file layout); PeftModel.from_pretrained loads it onto the transformers model
                     and its logits equal `lorascope hf logits --adapter` (and differ from the base
                     model's, so the adapter is really applied).
  PEFT -> lorascope  get_peft_model(..., init_lora_weights=False) with rsLoRA, rank_pattern /
                     alpha_pattern and modules_to_save (the classifier head, changed after wrapping
                     so that it differs from the base), saved by save_pretrained; lorascope loads
                     it and its logits equal PEFT's.
  merge              `lorascope hf merge` writes the base with the adapter merged; every tensor
                     equals PEFT's merge_and_unload() state dict, and transformers loads the merged
                     directory and reproduces PEFT's logits.
Max |ours - reference| / max |reference| <= 1e-5 (float32); decoder logits at non-pad positions.
"""
import copy
import os

import interop_common as ic

TOL = 1e-5
LLAMA = dict(ic.TINY_LLAMA, tie_word_embeddings=True)
ROBERTA = ic.TINY_ROBERTA
BERT = dict(ROBERTA, pad_token_id=0, type_vocab_size=2)
BASES = {"LlamaForCausalLM": LLAMA, "LlamaForSequenceClassification": dict(LLAMA, num_labels=3),
         "RobertaForSequenceClassification": ROBERTA, "BertForSequenceClassification": BERT}

EXPORT_CASES = [  # name, architecture, targets, rslora
    ("llama_causal_lm qv", "LlamaForCausalLM", ["q_proj", "v_proj"], False),
    ("llama_causal_lm all-linear rslora", "LlamaForCausalLM",
     ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"], True),
    ("roberta_seq_cls qv +classifier", "RobertaForSequenceClassification", ["query", "value"], False),
    ("bert_seq_cls qkv rslora +pooler,classifier", "BertForSequenceClassification", ["query", "key", "value"], True),
]
IMPORT_CASES = [  # name, architecture, LoraConfig keywords
    ("llama_causal_lm rank/alpha patterns", "LlamaForCausalLM",
     dict(target_modules=["q_proj", "v_proj", "down_proj"], rank_pattern={"q_proj": 6, r"layers\.1\.self_attn\.v_proj": 2},
          alpha_pattern={"down_proj": 24})),
    ("llama_causal_lm rslora", "LlamaForCausalLM", dict(target_modules=["q_proj", "v_proj"], use_rslora=True)),
    ("llama_seq_cls +score", "LlamaForSequenceClassification",
     dict(target_modules=["q_proj", "v_proj"], modules_to_save=["score"])),
    ("roberta_seq_cls rslora patterns +classifier", "RobertaForSequenceClassification",
     dict(target_modules=["query", "value", "intermediate.dense"], use_rslora=True, modules_to_save=["classifier"],
          rank_pattern={"value": 3}, alpha_pattern={r"layer\.0\.attention\.self\.query": 5})),
    ("bert_seq_cls +pooler,classifier", "BertForSequenceClassification",
     dict(target_modules=["query", "value"], modules_to_save=["pooler", "classifier"])),
]


def batch(torch, arch):
    cfg = BASES[arch]
    return ic.padded_batch(torch, cfg["vocab_size"], cfg["pad_token_id"], seed=6, left_pad=3)


class Env:
    def __init__(self, a, torch, transformers, peft):
        self.a, self.torch, self.transformers, self.peft = a, torch, transformers, peft
        self.bases = ic.RandomBases(torch, transformers, a.work, BASES)

    def base_dir(self, arch):
        return self.bases.dir(arch)

    def load(self, arch, d=None):
        return getattr(self.transformers, arch).from_pretrained(d or self.base_dir(arch), dtype=self.torch.float32).eval()

    def hf_logits(self, model, ids, mask):
        with self.torch.no_grad():
            return model(input_ids=ids, attention_mask=mask).logits

    def ls_logits(self, tag, arch, ids, mask, adapter=None, model_dir=None):
        from safetensors.torch import load_file
        ids_path = ic.write_json(os.path.join(self.a.work, tag + "_ids.json"),
                                 {"input_ids": ids.tolist(), "attention_mask": mask.tolist()})
        out = os.path.join(self.a.work, tag + "_logits.safetensors")
        args = ["hf", "logits", "--model", model_dir or self.base_dir(arch), "--ids", ids_path, "--out", out,
                "--head", ic.head(arch), "--device", ic.device()]
        if adapter:
            args += ["--adapter", adapter]
        ic.lorascope(self.a.lorascope, *args)
        return load_file(out)["logits"]

    def err(self, ours, ref, mask):
        if ref.dim() == 3:
            ours, ref = ours[mask.bool()], ref[mask.bool()]
        return ic.rel_err(ours, ref)


def export_case(env, rep, name, arch, targets, rslora):
    torch = env.torch
    tag = "export_" + name.split()[0] + ("_rs" if rslora else "") + f"_{len(targets)}"
    adapter = os.path.join(env.a.work, tag)
    args = ["hf", "random-adapter", "--model", env.base_dir(arch), "--out", adapter, "--head", ic.head(arch),
            "--r", 4, "--alpha", 8, "--targets", ",".join(targets), "--seed", 3, "--b-std", 0.1]
    ic.lorascope(env.a.lorascope, *args, *(["--rslora"] if rslora else []))
    check_peft_loads(env, rep, name, arch, tag, adapter)


def check_peft_loads(env, rep, name, arch, tag, adapter):
    """A lorascope-written adapter: PeftModel.from_pretrained's logits equal `lorascope hf logits
    --adapter` and differ from the base model's (so the adapter is really applied)."""
    ids, mask = batch(env.torch, arch)
    ours = env.ls_logits(tag, arch, ids, mask, adapter)
    pm = env.peft.PeftModel.from_pretrained(env.load(arch), adapter).eval()
    ref = env.hf_logits(pm, ids, mask)
    moved = env.err(env.hf_logits(env.load(arch), ids, mask), ref, mask)
    err = env.err(ours, ref, mask)
    rep.check(f"lorascope->peft {name}", err <= TOL and moved > 100 * TOL,
              f"max rel err {err:.2e}; the adapter moves PEFT's logits by {moved:.2e} (must be > {100 * TOL:.0e})", TOL)


def import_case(env, rep, name, arch, kwargs):
    torch, peft = env.torch, env.peft
    tag = "import_" + "_".join(name.replace("+", "").replace("/", "_").replace(",", "_").split())
    task = ic.peft_task(arch)
    torch.manual_seed(2)
    lcfg = peft.LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, bias="none", init_lora_weights=False, task_type=task,
                           **copy.deepcopy(kwargs))
    pm = peft.get_peft_model(env.load(arch), lcfg).eval()
    with torch.no_grad():  # a trained head: the saved modules differ from the base's
        for n, p in pm.named_parameters():
            if ".modules_to_save." in n:
                p.add_(0.05 * torch.randn_like(p))
    adapter = os.path.join(env.a.work, tag)
    pm.save_pretrained(adapter)
    ids, mask = batch(torch, arch)
    ref = env.hf_logits(pm, ids, mask)
    ours = env.ls_logits(tag, arch, ids, mask, adapter)
    saved = {k: kwargs[k] for k in ("rank_pattern", "alpha_pattern", "use_rslora", "modules_to_save") if k in kwargs}
    rep.close(f"peft->lorascope {name} {saved}", env.err(ours, ref, mask), TOL)

    # Merged weights: lorascope's merge against PEFT's merge_and_unload, tensor by tensor.
    from safetensors.torch import load_file
    merged_dir = os.path.join(env.a.work, tag + "_merged")
    ic.lorascope(env.a.lorascope, "hf", "merge", "--model", env.base_dir(arch), "--adapter", adapter, "--out",
                 merged_dir, "--head", ic.head(arch))
    ours_sd = load_file(os.path.join(merged_dir, "model.safetensors"))
    ref_sd = pm.merge_and_unload().state_dict()
    missing = [k for k in ours_sd if k not in ref_sd]
    if missing:
        rep.check(f"merge {name}", False, f"tensors transformers lacks: {missing[:4]}", TOL)
        return
    errs = {k: ic.rel_err(v, ref_sd[k]) for k, v in ours_sd.items()}
    worst = max(errs, key=errs.get)
    changed = sum(not torch.equal(ours_sd[k], env.load(arch).state_dict()[k]) for k in ours_sd)
    rep.check(f"merge {name}", errs[worst] <= TOL,
              f"{len(ours_sd)} tensors ({changed} changed by the merge), max rel err {errs[worst]:.2e} at {worst}", TOL)
    merged_logits = env.hf_logits(env.load(arch, merged_dir), ids, mask)
    rep.close(f"merge {name}: transformers loads lorascope's merged checkpoint", env.err(merged_logits, ref, mask),
              TOL, "max rel err vs PEFT's logits")


def main():
    a, torch, transformers, peft = ic.setup_peft(__doc__)
    env = Env(a, torch, transformers, peft)
    rep = ic.Report("check_peft")
    for case in EXPORT_CASES:
        rep.guarded(f"lorascope->peft {case[0]}", export_case, env, rep, *case)
    for case in IMPORT_CASES:
        rep.guarded(f"peft->lorascope {case[0]}", import_case, env, rep, *case)
    rep.finish()


if __name__ == "__main__":
    main()
