#!/usr/bin/env python3
"""LoRA inits that change the base weight (lora.init = spectral, PiSSA; olora, OLoRA), against peft's own.

  init             `lorascope hf random-adapter --init X` exports at rank 2r for the unmodified base,
                   lora_A = [A; A0], lora_B = [B, -B0]; its starting factors A0, B0 equal PEFT's
                   init_lora_weights="pissa" / "olora" on the same base: the products s B0 A0 (which
                   the SVD's and QR's sign choices do not change) and, for OLoRA, the factors.
  lorascope->PEFT  that adapter loads with PeftModel.from_pretrained onto the unmodified base and its
                   logits equal `lorascope hf logits --adapter`, and differ from the base's.
  PEFT->lorascope  a PEFT model after the init, its factors then moved as training would, saved with
                   save_pretrained(path_initial_model_for_weight_conversion=...) (PEFT's own
                   conversion to rank 2r); lorascope with that adapter on the unmodified base gives
                   the PEFT model's logits (mutated base, moved factors).
Max |ours - reference| / max |reference| <= 1e-5 (float32); decoder logits at non-pad positions.
"""
import json
import os

import interop_common as ic
from check_peft import TOL, Env, batch, check_peft_loads

CASES = [  # name, architecture, lorascope init, PEFT init, rslora
    ("llama_causal_lm pissa", "LlamaForCausalLM", "spectral", "pissa", False),
    ("llama_causal_lm olora rslora", "LlamaForCausalLM", "olora", "olora", True),
    ("roberta_seq_cls olora", "RobertaForSequenceClassification", "olora", "olora", False),
]
TARGETS = {"LlamaForCausalLM": ["q_proj", "v_proj"], "RobertaForSequenceClassification": ["query", "value"]}
R, ALPHA = 4, 8


def read_json(path):
    with open(path) as f:
        return json.load(f)


def peft_model(env, arch, peft_init, rslora):
    task = ic.peft_task(arch)
    cfg = env.peft.LoraConfig(r=R, lora_alpha=ALPHA, lora_dropout=0.0, bias="none", init_lora_weights=peft_init,
                              use_rslora=rslora, target_modules=TARGETS[arch], task_type=task)
    return env.peft.get_peft_model(env.load(arch), cfg).eval()


def factors(state, key_part):
    """{module: (A, B)} of a PEFT adapter state dict (keys ...<module>.lora_A.weight)."""
    out = {}
    for k, v in state.items():
        if ".lora_A." in k and key_part(k):
            m = k.split(".lora_A.")[0].replace("base_model.model.", "")
            out[m] = (v, state[k.replace(".lora_A.", ".lora_B.")])
    return out


def init_case(env, rep, name, arch, ours_init, peft_init, rslora):
    torch = env.torch
    from safetensors.torch import load_file
    tag = "init_" + "_".join(name.split())
    adapter = os.path.join(env.a.work, tag)
    ic.lorascope(env.a.lorascope, "hf", "random-adapter", "--model", env.base_dir(arch), "--out", adapter, "--head",
                 ic.head(arch), "--r", R, "--alpha", ALPHA, "--targets", ",".join(TARGETS[arch]), "--seed", 3,
                 "--b-std", 0.05, "--init", ours_init, *(["--rslora"] if rslora else []))
    cfg = read_json(os.path.join(adapter, "adapter_config.json"))
    scaling = ALPHA / (R ** 0.5 if rslora else R)
    rep.check(f"{name}: exported rank and alpha", cfg["r"] == 2 * R and
              abs(cfg["lora_alpha"] / (2 * R) ** (0.5 if rslora else 1) - scaling) < 1e-12,
              f"r {cfg['r']}, lora_alpha {cfg['lora_alpha']} (scaling {scaling} kept)", 0)

    # Starting factors against PEFT's init on the same base.
    ours = {m: (A[R:], -B[:, R:]) for m, (A, B) in factors(load_file(os.path.join(adapter, "adapter_model.safetensors")),
                                                          lambda k: True).items()}
    pm = peft_model(env, arch, peft_init, rslora)
    ref = {m: (A, B) for m, (A, B) in factors({k.replace(".default", ""): v for k, v in pm.state_dict().items()},
                                              lambda k: True).items()}
    worst, worst_factor = 0.0, 0.0
    for m, (A0, B0) in ours.items():
        if m not in ref:
            rep.check(f"{name}: init", False, f"PEFT has no adapter on {m} (it has {sorted(ref)[:3]})", TOL)
            return
        rA, rB = ref[m]
        worst = max(worst, ic.rel_err(scaling * B0.double() @ A0.double(), scaling * rB.double() @ rA.double()))
        worst_factor = max(worst_factor, ic.rel_err(A0, rA), ic.rel_err(B0, rB))
    rep.close(f"{name}: starting product s B0 A0 vs PEFT's {peft_init} ({len(ours)} modules)", worst, TOL)
    if ours_init == "olora":
        rep.close(f"{name}: starting factors A0, B0 vs PEFT's olora", worst_factor, TOL)

    # lorascope -> PEFT: the converted adapter on the unmodified base.
    check_peft_loads(env, rep, name, arch, tag, adapter)


def import_case(env, rep, name, arch, ours_init, peft_init, rslora):
    torch = env.torch
    tag = "import_" + "_".join(name.split())
    initial = os.path.join(env.a.work, tag + "_initial")
    converted = os.path.join(env.a.work, tag + "_converted")
    torch.manual_seed(5)
    pm = peft_model(env, arch, peft_init, rslora)
    # PEFT's recipe: the initial adapter saved with init_lora_weights=True, so that loading it does
    # not run the init again; the trained one saved against it.
    pm.peft_config["default"].init_lora_weights = True
    pm.save_pretrained(initial)
    pm.peft_config["default"].init_lora_weights = peft_init
    with torch.no_grad():  # as if trained
        for n, p in pm.named_parameters():
            if ".lora_" in n:
                p.add_(0.05 * torch.randn_like(p))
    pm.save_pretrained(converted, path_initial_model_for_weight_conversion=initial)
    ids, mask = batch(torch, arch)
    ref = env.hf_logits(pm, ids, mask)
    ours = env.ls_logits(tag, arch, ids, mask, converted)
    cfg = read_json(os.path.join(converted, "adapter_config.json"))
    rep.close(f"peft->lorascope {name} (PEFT's conversion: r {cfg['r']}, lora_alpha {cfg['lora_alpha']})",
              env.err(ours, ref, mask), TOL)


def main():
    a = ic.parse_args(__doc__)
    torch = ic.setup_torch()
    import peft
    import transformers
    transformers.utils.logging.set_verbosity_error()
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, peft {peft.__version__}", flush=True)
    env = Env(a, torch, transformers, peft)
    rep = ic.Report("check_lora_inits")
    for case in CASES:
        rep.guarded(f"init {case[0]}", init_case, env, rep, *case)
        rep.guarded(f"peft->lorascope {case[0]}", import_case, env, rep, *case)
    rep.finish()


if __name__ == "__main__":
    main()
