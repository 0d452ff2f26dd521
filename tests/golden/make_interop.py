#!/usr/bin/env python3
"""Regenerates tests/golden/interop/: inputs and expected outputs made by the reference libraries
(transformers, peft, torch; scripts/reference_env.sh), which tests/test_golden.cpp checks without
any Python:

  model/                  a tiny random-init LlamaForCausalLM (GQA, head_dim != hidden/heads,
                          llama3 rope scaling, tied embeddings) written by save_pretrained
  adapter/                a PEFT LoRA adapter on q_proj / v_proj (r 2, alpha 4, rsLoRA,
                          init_lora_weights=False: A and B random) written by save_pretrained
  batch.json              input_ids, attention_mask (one row right-padded, one left-padded) and
                          lorascope-convention next-token labels (-100 at padding / the end)
  expected.safetensors    logits      transformers' logits of model/ on the batch (B, T, V)
                          loss        PEFT's training loss on the batch (mean over the targets)
                          grad.<PEFT name>   every LoRA gradient of that loss
  optim.safetensors       param.<k> (3 matrices: square, tall, wide), grad.<k>.<step> (3 steps),
                          adamw.<k> after 3 torch.optim.AdamW steps (lr 0.01, betas (0.9, 0.99),
                          eps 1e-8, weight decay 0.1), muon.<k> after 3 torch.optim.Muon steps
                          (lr 0.02, momentum 0.9, Nesterov, ns_steps 5, adjust_lr_fn "original",
                          weight decay 0.1) with its Newton-Schulz run in float32 instead of bf16
                          (tests/interop/check_optimizers.py explains the swap and the momentum
                          forms), gradients given (not computed from the parameters)

    PY=$(bash scripts/reference_env.sh | tail -1); $PY tests/golden/make_interop.py
"""
import json
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "interop"))

import torch  # noqa: E402
import peft  # noqa: E402
import transformers  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

from check_optimizers import ns_dtype  # noqa: E402  (the bf16 -> float32 working-dtype swap)

OUT = os.path.join(HERE, "interop")


def main():
    torch.set_num_threads(1)
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    cfg = transformers.LlamaConfig(
        vocab_size=64, hidden_size=16, intermediate_size=24, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=6, max_position_embeddings=32, initializer_range=0.2, pad_token_id=0,
        tie_word_embeddings=True, rope_theta=50000.0,
        rope_scaling={"rope_type": "llama3", "factor": 4.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                      "original_max_position_embeddings": 8})
    cfg.architectures = ["LlamaForCausalLM"]
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(cfg).float().eval()
    model.save_pretrained(os.path.join(OUT, "model"))

    g = torch.Generator().manual_seed(1)
    B, T = 3, 10
    ids = torch.randint(3, 64, (B, T), generator=g)
    mask = torch.ones(B, T, dtype=torch.long)
    mask[1, 7:] = 0
    mask[2, :3] = 0
    ids[mask == 0] = 0
    hf_labels = ids.masked_fill(mask == 0, -100)
    # The first real token of a left-padded row would be predicted from a pad query, whose output
    # transformers leaves undefined (nothing to attend to): no target there on either side.
    hf_labels[:, 1:][mask[:, :-1] == 0] = -100
    labels = torch.full_like(ids, -100)
    labels[:, :-1] = hf_labels[:, 1:]
    with open(os.path.join(OUT, "batch.json"), "w") as f:
        json.dump({"input_ids": ids.tolist(), "attention_mask": mask.tolist(), "labels": labels.tolist()}, f)
    expected = {}
    with torch.no_grad():
        expected["logits"] = model(input_ids=ids, attention_mask=mask).logits.contiguous()

    torch.manual_seed(2)
    lcfg = peft.LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"], lora_dropout=0.0, bias="none",
                           use_rslora=True, init_lora_weights=False, task_type="CAUSAL_LM")
    base = transformers.LlamaForCausalLM.from_pretrained(os.path.join(OUT, "model"), dtype=torch.float32)
    pm = peft.get_peft_model(base, lcfg)
    pm.save_pretrained(os.path.join(OUT, "adapter"))
    # No absolute path of this machine in the committed files, and no generated model card.
    os.remove(os.path.join(OUT, "adapter", "README.md"))
    cfg_path = os.path.join(OUT, "adapter", "adapter_config.json")
    with open(cfg_path) as f:
        adapter_cfg = json.load(f)
    adapter_cfg["base_model_name_or_path"] = "../model"
    with open(cfg_path, "w") as f:
        json.dump(adapter_cfg, f, indent=2, sort_keys=True)
    pm.train()
    out = pm(input_ids=ids, attention_mask=mask, labels=hf_labels)
    out.loss.backward()
    expected["loss"] = out.loss.detach().double().reshape(1)
    for n, p in pm.named_parameters():
        if p.requires_grad:
            expected["grad." + n.replace(".default.", ".")] = p.grad.detach().contiguous()
    save_file(expected, os.path.join(OUT, "expected.safetensors"))

    g = torch.Generator().manual_seed(3)
    shapes = {"square": (8, 8), "tall": (12, 4), "wide": (4, 12)}
    opt = {}
    for k, s in shapes.items():
        opt[f"param.{k}"] = torch.randn(s, generator=g)
        for step in range(3):
            opt[f"grad.{k}.{step}"] = torch.randn(s, generator=g)

    def run(make):
        params = {k: opt[f"param.{k}"].clone().requires_grad_(True) for k in shapes}
        o = make(list(params.values()))
        for step in range(3):
            for k, p in params.items():
                p.grad = opt[f"grad.{k}.{step}"].clone()
            o.step()
        return {k: p.detach().clone() for k, p in params.items()}

    for k, v in run(lambda ps: torch.optim.AdamW(ps, lr=0.01, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.1)).items():
        opt[f"adamw.{k}"] = v
    with ns_dtype(torch, torch.float32):
        muon = run(lambda ps: torch.optim.Muon(ps, lr=0.02, weight_decay=0.1, momentum=0.9, nesterov=True, ns_steps=5,
                                               eps=1e-7, adjust_lr_fn="original"))
    for k, v in muon.items():
        opt[f"muon.{k}"] = v
    save_file(opt, os.path.join(OUT, "optim.safetensors"))
    with open(os.path.join(OUT, "VERSIONS"), "w") as f:
        f.write(f"torch {torch.__version__}\ntransformers {transformers.__version__}\npeft {peft.__version__}\n")
    total = sum(os.path.getsize(os.path.join(r, n)) for r, _, fs in os.walk(OUT) for n in fs)
    print(f"wrote {OUT}: {total / 1024:.0f} KB")


if __name__ == "__main__":
    main()
