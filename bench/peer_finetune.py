#!/usr/bin/env python3
"""Peer for `lorascope_bench finetune`: LoRA fine-tuning throughput of a randomly initialized
LLaMA-3.2-1B-shaped model with transformers + peft in eager PyTorch, same shapes, optimizer and
precision (float32 weights, bf16 autocast, r = 8 on q_proj and v_proj, random token ids).

Prints one JSON line: step_ms (median), tokens_per_s, peak_mem_gib. With --matmul-peak it also
times a large bf16 matmul and prints the achieved TFLOP/s (the peak the report divides by).
"""
import argparse
import json
import statistics
import time

import torch


def llama32_1b_config(layers):
    from transformers import LlamaConfig
    # The published LLaMA-3.2-1B config.json, written out (nothing can be downloaded there).
    return LlamaConfig(
        vocab_size=128256, hidden_size=2048, intermediate_size=8192, num_hidden_layers=layers,
        num_attention_heads=32, num_key_value_heads=8, head_dim=64, hidden_act="silu",
        max_position_embeddings=131072, rms_norm_eps=1e-5, rope_theta=500000.0,
        rope_scaling={"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                      "original_max_position_embeddings": 8192, "rope_type": "llama3"},
        tie_word_embeddings=True, attention_bias=False, mlp_bias=False,
        bos_token_id=128000, eos_token_id=128001, attn_implementation="sdpa")


def matmul_peak_tflops(device, n=8192, repeats=20):
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize(device)
    ms = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(10):
            a @ b
        torch.cuda.synchronize(device)
        ms.append((time.perf_counter() - t0) * 1000.0 / 10)
    return 2.0 * n ** 3 / (statistics.median(ms) / 1000.0) / 1e12


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--optim", default="adamw", help="adamw and/or muon, comma-separated")
    ap.add_argument("--layers", type=int, default=16)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--steps", type=int, default=12, help="timed steps (3 warm-up steps first)")
    ap.add_argument("--matmul-peak", action="store_true")
    args = ap.parse_args()
    device = torch.device(args.device)
    res = {"bench": "peer-finetune", "device": str(device), "torch": torch.__version__}
    if args.matmul_peak:
        res["bench"] = "matmul-peak"
        res["bf16_matmul_tflops"] = matmul_peak_tflops(device)
        res["gpu"] = torch.cuda.get_device_name(device)
        print(json.dumps(res), flush=True)
        return

    import peft
    import transformers
    from transformers import LlamaForCausalLM
    torch.manual_seed(0)
    cfg = llama32_1b_config(args.layers)
    with torch.device(device):  # initialise on the GPU: seconds instead of a minute on the CPU
        model = LlamaForCausalLM(cfg)
    lora = peft.LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=["q_proj", "v_proj"],
                           bias="none", task_type="CAUSAL_LM")
    model = peft.get_peft_model(model, lora)
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(cfg.vocab_size, (args.batch, args.seq + 1), generator=g).to(device)
    inputs, labels = ids[:, :-1].contiguous(), ids[:, 1:].contiguous()
    for name in args.optim.split(","):
        opt = make_optimizer(name, trainable)

        def step():
            with torch.autocast(device.type, dtype=torch.bfloat16):
                logits = model(input_ids=inputs).logits
            loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, cfg.vocab_size),
                                                     labels.reshape(-1))
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

        torch.cuda.reset_peak_memory_stats(device)
        for _ in range(3):
            step()
        torch.cuda.synchronize(device)
        times = []
        for _ in range(args.steps):
            t0 = time.perf_counter()
            step()
            torch.cuda.synchronize(device)
            times.append((time.perf_counter() - t0) * 1000.0)
        ms = statistics.median(times)
        tokens = args.batch * args.seq
        line = dict(res, optim=name, layers=args.layers, batch=args.batch, seq=args.seq,
                    step_ms=ms, tokens_per_s=tokens / (ms / 1000.0),
                    peak_mem_gib=torch.cuda.max_memory_allocated(device) / 2 ** 30,
                    transformers=transformers.__version__, peft=peft.__version__,
                    trainable_params=sum(p.numel() for p in trainable))
        print(json.dumps(line), flush=True)
        del opt


def make_optimizer(name, trainable):
    if name == "muon":
        kw = dict(lr=0.02, weight_decay=0.01, momentum=0.95, nesterov=True)
        try:
            return torch.optim.Muon(trainable, adjust_lr_fn="match_rms_adamw", **kw)
        except (TypeError, ValueError):  # older signature: the default lr adjustment
            return torch.optim.Muon(trainable, **kw)
    if name == "adamw":
        return torch.optim.AdamW(trainable, lr=1e-4, weight_decay=0.01)  # foreach by default
    raise SystemExit(f"peer_finetune.py: --optim: unknown optimizer {name!r} (adamw, muon)")


if __name__ == "__main__":
    main()
