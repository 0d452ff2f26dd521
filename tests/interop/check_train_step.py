#!/usr/bin/env python3
"""Training step: lorascope's loss and LoRA gradients against PEFT's on the same model and batch.

PEFT builds the adapter (get_peft_model, init_lora_weights=False so that A and B are both random
and every gradient is nonzero; modules_to_save for a classifier head) on a random-init
transformers checkpoint and saves it; lorascope loads checkpoint and adapter
(build/tests/lorascope_interop_driver train-step), runs one forward/backward on the same padded
batch with the trainer's loss, and writes the loss and every trainable gradient. Compared: the loss
and each gradient (LoRA A and B of every adapted layer, the modules_to_save parameters), max |ours
- PEFT's| / max |PEFT's| <= 1e-5, float32. Both sides run in training mode with dropout 0.

Losses: causal LM, transformers' labels = input_ids with -100 at padding (shifted inside the
model); lorascope's trainer takes next-token labels already aligned (labels[t] = input_ids[t+1],
-100 at padding and the last position), so the same targets are passed in each side's convention.
Mean over the counted tokens; no target is predicted from a pad position (a left-padded row's
first token), whose logits transformers leaves undefined. Classification: mean cross entropy over
the rows (one row right-padded, one left-padded).
"""
import os

import interop_common as ic

TOL = 1e-5
LLAMA = dict(ic.TINY_LLAMA, tie_word_embeddings=False)
ROBERTA = ic.TINY_ROBERTA
BASES = {"LlamaForCausalLM": LLAMA, "LlamaForSequenceClassification": dict(LLAMA, num_labels=3),
         "RobertaForSequenceClassification": ROBERTA}
LLAMA_ALL = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
ROBERTA_ALL = ["query", "key", "value", "intermediate.dense", "output.dense"]

CASES = [
    # name, architecture, targets, rslora, modules_to_save
    ("llama_causal_lm qv", "LlamaForCausalLM", ["q_proj", "v_proj"], False, None),
    ("llama_causal_lm qv rslora", "LlamaForCausalLM", ["q_proj", "v_proj"], True, None),
    ("llama_causal_lm all-linear", "LlamaForCausalLM", LLAMA_ALL, False, None),
    ("llama_causal_lm all-linear rslora", "LlamaForCausalLM", LLAMA_ALL, True, None),
    ("llama_seq_cls qv +score", "LlamaForSequenceClassification", ["q_proj", "v_proj"], False, ["score"]),
    ("roberta_seq_cls qv rslora +classifier", "RobertaForSequenceClassification", ["query", "value"], True,
     ["classifier"]),
    ("roberta_seq_cls all-linear +classifier", "RobertaForSequenceClassification", ROBERTA_ALL, False,
     ["classifier"]),
]


def peft_name(n):
    """PEFT parameter name -> the name in its saved adapter (and in the driver's output)."""
    n = n.replace(".lora_A.default.", ".lora_A.").replace(".lora_B.default.", ".lora_B.")
    return n.replace(".modules_to_save.default.", ".")


def one_case(a, rep, torch, transformers, peft, bases, name, arch, targets, rslora, saved):
    from safetensors.torch import load_file
    d = bases.dir(arch)
    torch.manual_seed(1)
    base = getattr(transformers, arch).from_pretrained(d, dtype=torch.float32)
    task = ic.peft_task(arch)
    lcfg = peft.LoraConfig(r=4, lora_alpha=8, target_modules=targets, lora_dropout=0.0, bias="none",
                           use_rslora=rslora, init_lora_weights=False, task_type=task, modules_to_save=saved)
    pm = peft.get_peft_model(base, lcfg)
    tag = name.replace(" ", "_").replace("+", "")
    adapter = os.path.join(a.work, tag + "_adapter")
    pm.save_pretrained(adapter)
    pm.train()
    ids, mask = ic.padded_batch(torch, BASES[arch]["vocab_size"], BASES[arch]["pad_token_id"], seed=5, left_pad=5)
    if task == "CAUSAL_LM":
        hf_labels = ids.masked_fill(mask == 0, -100)
        # A left-padded row's first real token would be predicted from a pad query, which
        # transformers leaves undefined (nothing to attend to): no target there on either side.
        hf_labels[:, 1:][mask[:, :-1] == 0] = -100
        ls_labels = torch.full_like(ids, -100)
        ls_labels[:, :-1] = hf_labels[:, 1:]
    else:
        hf_labels = ls_labels = torch.tensor([2, 0, 1])
    out = pm(input_ids=ids, attention_mask=mask, labels=hf_labels)
    out.loss.backward()
    ref = {peft_name(n): p.grad.detach().clone() for n, p in pm.named_parameters() if p.requires_grad}
    batch_path = ic.write_json(os.path.join(a.work, tag + "_batch.json"),
                               {"input_ids": ids.tolist(), "attention_mask": mask.tolist(), "labels": ls_labels.tolist()})
    got_path = os.path.join(a.work, tag + "_grads.safetensors")
    ic.run([ic.driver_path(a.lorascope), "--threads", str(ic.threads()), "train-step", "--model", d, "--adapter",
            adapter, "--batch", batch_path, "--head", ic.head(arch), "--out", got_path])
    got = load_file(got_path)
    ref_loss = float(out.loss.detach())
    loss_err = abs(float(got.pop("loss")[0]) - ref_loss) / abs(ref_loss)
    rep.check(f"{name} loss", loss_err <= TOL, f"rel err {loss_err:.2e} (PEFT's loss {ref_loss:.6f})", TOL)
    if set(got) != set(ref):
        rep.check(f"{name} gradients", False,
                  f"different parameters: only lorascope {sorted(set(got) - set(ref))[:4]}, "
                  f"only PEFT {sorted(set(ref) - set(got))[:4]}", TOL)
        return
    errs = {k: ic.rel_err(got[k], ref[k]) for k in ref}
    worst = max(errs, key=errs.get)
    lora = sum(".lora_" in k for k in ref)
    rep.check(f"{name} gradients", errs[worst] <= TOL,
              f"{len(ref)} tensors ({lora} LoRA factors), max rel err {errs[worst]:.2e} at {worst}", TOL)


def main():
    a, torch, transformers, peft = ic.setup_peft(__doc__)
    rep = ic.Report("check_train_step")
    bases = ic.RandomBases(torch, transformers, a.work, BASES)
    for case in CASES:
        rep.guarded(case[0], one_case, a, rep, torch, transformers, peft, bases, *case)
    rep.finish()


if __name__ == "__main__":
    main()
