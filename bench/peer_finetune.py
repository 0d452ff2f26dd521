#!/usr/bin/env python3
"""Peer for `lorascope_bench finetune`: LoRA fine-tuning throughput with transformers + peft in
eager PyTorch, same model shapes, LoRA targets, optimizer and precision, random token ids:
  --model llama1b  LLaMA-3.2-1B-shaped, random weights, causal LM (the GPU benchmark)
  --model small    the demo's small LLaMA (configs/lm/pretrain_brown.json), random weights,
                   2-label sequence classification (PEFT task SEQ_CLS: the head "score" trained)
  --model minilm   the real all-MiniLM-L6-v2 (BertModel), LoRA on it, a trained 2-label linear
                   head on the L2-normalized mean-pooled embedding (sentence-transformers)
Muon: torch.optim.Muon on the LoRA matrices, AdamW on the rest (the head), as lorascope does.

Prints one JSON line per optimizer: step_ms (median of single steps), tokens_per_s, cpu time,
peak_mem_gib (CUDA). With --matmul-peak it times a large bf16 matmul and prints the achieved
TFLOP/s (the peak the GPU report divides by).
"""
import argparse
import json
import os
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


def small_llama_config():
    from transformers import LlamaConfig
    # configs/lm/pretrain_brown.json (the demo's base); lorascope's defaults for the rest.
    return LlamaConfig(
        vocab_size=4096, hidden_size=128, intermediate_size=344, num_hidden_layers=4,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        rms_norm_eps=1e-6, rope_theta=10000.0, pad_token_id=0, num_labels=2,
        tie_word_embeddings=False, attention_bias=False, mlp_bias=False,
        attn_implementation="sdpa")


BERT_ALL_LINEAR = r".*encoder\.layer\.\d+\..*(query|key|value|dense)"  # as lorascope_bench
LLAMA_ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class MeanPooledClassifier(torch.nn.Module):
    """sentence-transformers' mean pooling and Normalize, then a linear head."""

    def __init__(self, encoder, hidden, num_labels=2):
        super().__init__()
        self.encoder = encoder
        self.head = torch.nn.Linear(hidden, num_labels)

    def forward(self, input_ids):
        h = self.encoder(input_ids=input_ids).last_hidden_state  # no padding: a plain mean
        return self.head(torch.nn.functional.normalize(h.mean(1), dim=-1))


def build_model(args, device):
    """(model, logits_fn(ids) -> logits, vocab, classification)."""
    import peft
    if args.model == "minilm":
        from transformers import BertModel
        enc = BertModel.from_pretrained(args.minilm, add_pooling_layer=False,
                                        attn_implementation="sdpa")
        targets = BERT_ALL_LINEAR if args.targets == "all" else ["query", "value"]
        lora = peft.LoraConfig(r=args.r, lora_alpha=2 * args.r, lora_dropout=0.0,
                               target_modules=targets, bias="none")
        enc = peft.get_peft_model(enc, lora)
        model = MeanPooledClassifier(enc, enc.config.hidden_size).to(device)
        return model, model, enc.config.vocab_size, True
    if args.model == "small":
        from transformers import LlamaForSequenceClassification
        cfg = small_llama_config()
        model = LlamaForSequenceClassification(cfg)
        task = "SEQ_CLS"
    else:
        from transformers import LlamaForCausalLM
        cfg = llama32_1b_config(args.layers)
        with torch.device(device):  # initialise on the GPU: seconds instead of a minute on the CPU
            model = LlamaForCausalLM(cfg)
        task = "CAUSAL_LM"
    targets = LLAMA_ALL_LINEAR if args.targets == "all" else ["q_proj", "v_proj"]
    lora = peft.LoraConfig(r=args.r, lora_alpha=2 * args.r, lora_dropout=0.0,
                           target_modules=targets, bias="none", task_type=task)
    model = peft.get_peft_model(model, lora).to(device)
    return model, (lambda ids: model(input_ids=ids).logits), cfg.vocab_size, task == "SEQ_CLS"


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


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
    ap.add_argument("--model", default="llama1b", choices=["llama1b", "small", "minilm"])
    ap.add_argument("--minilm", default=".cache/models/all-MiniLM-L6-v2")
    ap.add_argument("--targets", default="qv", choices=["qv", "all"])
    ap.add_argument("--r", type=int, default=8)
    ap.add_argument("--optim", default="adamw", help="adamw and/or muon, comma-separated")
    ap.add_argument("--layers", type=int, default=16)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--steps", type=int, default=12, help="timed steps (3 warm-up steps first)")
    ap.add_argument("--no-bf16", action="store_true", help="float32 forward, no autocast")
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: default)")
    ap.add_argument("--matmul-peak", action="store_true")
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
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
    torch.manual_seed(0)
    model, logits_fn, vocab, classification = build_model(args, device)
    layers = getattr(getattr(model, "config", None), "num_hidden_layers", None) or (
        6 if args.model == "minilm" else args.layers)
    model.train()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1, vocab, (args.batch, args.seq + 1), generator=g).to(device)
    inputs = ids[:, :-1].contiguous()
    labels = (torch.randint(0, 2, (args.batch,), generator=g) if classification
              else ids[:, 1:].contiguous()).to(device)
    for name in args.optim.split(","):
        opt = make_optimizer(name, trainable)

        def step():
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=not args.no_bf16):
                logits = logits_fn(inputs)
            loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.shape[-1]),
                                                     labels.reshape(-1))
            loss.backward()
            for o in opt:
                o.step()
            for o in opt:
                o.zero_grad(set_to_none=True)

        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        for _ in range(3):
            step()
        sync(device)
        times = []
        cpu0 = time.process_time()
        for _ in range(args.steps):
            t0 = time.perf_counter()
            step()
            sync(device)
            times.append((time.perf_counter() - t0) * 1000.0)
        cpu_ms = (time.process_time() - cpu0) * 1000.0 / args.steps
        ms = statistics.median(times)
        tokens = args.batch * args.seq
        peak = torch.cuda.max_memory_allocated(device) / 2 ** 30 if device.type == "cuda" else -1.0
        line = dict(res, impl="peft", model=args.model, targets=args.targets, r=args.r, optim=name,
                    threads=torch.get_num_threads(), layers=layers, batch=args.batch,
                    seq=args.seq, bf16=not args.no_bf16, step_ms=ms, step_ms_min=min(times),
                    cpu_ms_per_step=cpu_ms, tokens_per_s=tokens / (ms / 1000.0),
                    peak_mem_gib=peak, transformers=transformers.__version__,
                    peft=peft.__version__, trainable_params=sum(p.numel() for _, p in trainable))
        print(json.dumps(line), flush=True)
        del opt


def make_optimizer(name, trainable):
    """A list of optimizers: Muon on the LoRA matrices plus AdamW on the rest, or AdamW."""
    adamw_kw = dict(lr=1e-4, weight_decay=0.01)  # foreach by default
    if name == "adamw":
        return [torch.optim.AdamW([p for _, p in trainable], **adamw_kw)]
    if name != "muon":
        raise SystemExit(f"peer_finetune.py: --optim: unknown optimizer {name!r} (adamw, muon)")
    lora = [p for n, p in trainable if ".lora_A." in n or ".lora_B." in n]
    rest = [p for n, p in trainable if not (".lora_A." in n or ".lora_B." in n)]
    kw = dict(lr=0.02, weight_decay=0.01, momentum=0.95, nesterov=True)
    try:
        muon = torch.optim.Muon(lora, adjust_lr_fn="match_rms_adamw", **kw)
    except (TypeError, ValueError):  # older signature: the default lr adjustment
        muon = torch.optim.Muon(lora, **kw)
    return [muon] + ([torch.optim.AdamW(rest, **adamw_kw)] if rest else [])


if __name__ == "__main__":
    main()
