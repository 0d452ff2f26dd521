#!/usr/bin/env python3
"""Intruder dimensions and the ESD alpha of W + delta W from `lorascope analyze`, against PEFT's
own reduce_intruder_dimension (peft.tuners.lora.intruders, which logs "Intruders: N" per layer)
and weightwatcher on the merged weights, for adapters that PEFT itself saved:

  bert     a random-init BertModel (transformers from_config, 4 layers, width 256) saved here
  minilm   the real all-MiniLM-L6-v2 (DATA/../models/all-MiniLM-L6-v2), when present

The adapters are PEFT's random init (init_lora_weights=False) with lora_B scaled by 0.001, 0.03,
0.3, 3 in turn from layer to layer, so that some layers have no intruders and others many. PEFT decides in float32 (its SVDs of W
and W + delta W); lorascope in float64 from W's SVD; counts must be equal, and the report gives
how close any cosine came to epsilon. Merged alpha: weightwatcher on W + s B A formed in float64
here (weightwatcher reads a layer's weights as float32, so the two differ by that rounding,
about 1e-8); tolerance 1e-6 relative.

    PY=$(bash scripts/reference_env.sh | tail -1)
    $PY tests/interop/check_intruders.py --lorascope build/lorascope --work /tmp/intr --data .cache/data
"""
import json
import logging
import os
import shutil
import subprocess
import sys

import torch

logging.getLogger("weightwatcher").setLevel(logging.ERROR)
import weightwatcher as ww  # noqa: E402
from peft import LoraConfig, PeftModel, get_peft_model  # noqa: E402
from peft.tuners.lora.intruders import reduce_intruder_dimension  # noqa: E402
from transformers import AutoModel, BertConfig, BertModel  # noqa: E402

import interop_common as ic  # noqa: E402

ALPHA_TOL = 1e-6
failed = 0


def report(status, name, text):
    global failed
    failed += status == "FAIL"
    print(f"{status} {name}: {text}", flush=True)


def make_run(work, name, base_dir, model):
    run = os.path.join(work, name)
    shutil.rmtree(run, ignore_errors=True)
    os.makedirs(run)
    torch.manual_seed(5)
    peft_model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=["query", "value"],
                                                  init_lora_weights=False))
    with torch.no_grad():
        for mod_name, mod in peft_model.named_modules():
            if hasattr(mod, "lora_B") and "default" in getattr(mod, "lora_B", {}):
                layer = int(mod_name.split("layer.")[1].split(".")[0])
                mod.lora_B["default"].weight.mul_((0.001, 0.03, 0.3, 3.0)[layer % 4])
    peft_model.save_pretrained(os.path.join(run, "adapter"))
    with open(os.path.join(run, "config.json"), "w") as f:
        json.dump({"name": name, "base": base_dir}, f)
    return run


def check(name, base_dir, exe, work):
    base = AutoModel.from_pretrained(base_dir, dtype=torch.float32)
    run = make_run(work, name, base_dir, base)
    out = os.path.join(work, f"{name}_analysis")
    p = subprocess.run([exe, "--threads", "2", "analyze", run, "--out", out, "--no-plots"], capture_output=True,
                       text=True, timeout=600)
    if p.returncode != 0:
        raise RuntimeError(f"lorascope analyze exited {p.returncode}: {p.stderr.strip()[-500:]}")
    with open(os.path.join(out, "analysis.json")) as f:
        ours = {l["module"]: l for l in json.load(f)["runs"][0]["layers"]}

    # PEFT's rule, by PEFT's function, on the adapter PEFT loads back.
    model = PeftModel.from_pretrained(AutoModel.from_pretrained(base_dir, dtype=torch.float32), os.path.join(run, "adapter"))
    lines = []
    reduce_intruder_dimension(model, top_k=10, threshold_epsilon=0.5, logging_sink=lines.append)
    theirs = {}
    for line in lines:
        if ": " not in line or not line.startswith("base_model.model."):
            continue
        module, what = line[len("base_model.model."):].split(": ", 1)
        theirs[module] = 0 if what == "No intruders" else int(what.split("Intruders: ")[1])
    problems, total, margin = [], 0, 1.0
    for module, n in sorted(theirs.items()):
        o = ours.get(module)
        if o is None:
            problems.append(f"{module}: not in lorascope's analysis")
            continue
        total += n
        margin = min([margin] + [abs(c - 0.5) for c in o["intruder_max_cos"]])
        if o["intruders"] != n:
            problems.append(f"{module}: lorascope {o['intruders']} vs PEFT {n}")
    if set(ours) != set(theirs):
        problems.append(f"layers differ: {sorted(set(ours) ^ set(theirs))[:3]}")
    if problems or not theirs:
        report("FAIL", f"intruders/{name}", f"{len(problems)} of {len(theirs)} layers differ, first: "
               f"{problems[0] if problems else 'no PEFT output'} (tolerance: equal counts)")
    else:
        report("PASS", f"intruders/{name}", f"{len(theirs)} layers, {total} intruders in all "
               f"({sum(1 for n in theirs.values() if n == 0)} layers without), equal counts; "
               f"closest |cos - epsilon| {margin:.1e} (tolerance: equal counts)")

    # Alpha of W + s B A (float64) by weightwatcher.
    from safetensors.torch import load_file
    adapter = load_file(os.path.join(run, "adapter", "adapter_model.safetensors"))
    base = AutoModel.from_pretrained(base_dir, dtype=torch.float32)
    weights = dict(base.named_parameters())
    names, layers = [], []
    for module in sorted(ours):
        A = adapter[f"base_model.model.{module}.lora_A.weight"].double()
        B = adapter[f"base_model.model.{module}.lora_B.weight"].double()
        W = weights[module + ".weight"].detach().double()
        merged = W + ours[module]["scaling"] * (B @ A)
        lin = torch.nn.Linear(W.shape[1], W.shape[0], bias=False, dtype=torch.float64)
        with torch.no_grad():
            lin.weight.copy_(merged)
        names.append(module)
        layers.append(lin)
    df = ww.WeightWatcher(model=torch.nn.Sequential(*layers)).analyze()
    worst, bad = 0.0, []
    for _, row in df.iterrows():
        module = names[int(row["name"])]
        a = ours[module]["esd_merged"]["alpha"]
        rel = abs(a - row["alpha"]) / abs(row["alpha"]) if a is not None else float("inf")
        worst = max(worst, rel)
        if not rel <= ALPHA_TOL:
            bad.append(f"{module}: {a} vs {row['alpha']}")
    if bad or len(df) != len(names):
        report("FAIL", f"esd_alpha_merged/{name}", f"{len(bad)} layers differ ({bad[:1]}), weightwatcher fitted "
               f"{len(df)} of {len(names)} (tolerance {ALPHA_TOL:.0e})")
    else:
        report("PASS", f"esd_alpha_merged/{name}", f"{len(names)} layers, max rel alpha err {worst:.2e} "
               f"(tolerance {ALPHA_TOL:.0e})")


def main():
    a = ic.parse_args(__doc__.splitlines()[0])
    exe = a.lorascope
    torch.set_num_threads(ic.threads())
    bert_dir = os.path.join(a.work, "bert_base")
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=1000, hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
                     intermediate_size=512, max_position_embeddings=128)
    BertModel(cfg).save_pretrained(bert_dir)
    for name, d in (("bert", bert_dir),
                    ("minilm", os.path.join(os.path.dirname(os.path.abspath(a.data)), "models", "all-MiniLM-L6-v2"))):
        if not os.path.exists(os.path.join(d, "model.safetensors")):
            report("SKIP", f"intruders/{name}", f"{d}/model.safetensors not found")
            continue
        try:
            check(name, d, exe, a.work)
        except Exception as e:
            report("FAIL", f"intruders/{name}", f"{type(e).__name__}: {e}"[:500])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
