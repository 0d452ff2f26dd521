#!/usr/bin/env python3
"""Peer timings for `lorascope_bench muon-step`: the optimizer step over the LoRA factors of a
LLaMA-3.2-1B-shaped model, in PyTorch from Python, on the same shapes.

Prints one JSON line: torch.optim.Muon, torch.optim.AdamW (foreach and fused), and the
reference "grouped in plain Python" step (same-shape matrices stacked, Newton-Schulz as batched
bf16 products) eager and replayed as a CUDA graph. Milliseconds per step, median of rounds.
"""
import argparse
import json
import statistics
import time

import torch

HIDDEN, KV, MLP = 2048, 512, 8192


def adapted_layers(targets):
    # (out, in) of the adapted linear layers of one block: q, k, v, o, gate, up, down.
    if targets == "qv":
        return [(HIDDEN, HIDDEN), (KV, HIDDEN)]
    return [(HIDDEN, HIDDEN), (KV, HIDDEN), (KV, HIDDEN), (HIDDEN, HIDDEN), (MLP, HIDDEN),
            (MLP, HIDDEN), (HIDDEN, MLP)]


def make_params(targets, r, layers, device):
    g = torch.Generator().manual_seed(0)
    params = []
    for _ in range(layers):
        for out, inp in adapted_layers(targets):
            for shape in ((r, inp), (out, r)):  # lora_A (r x in), lora_B (out x r)
                p = (torch.randn(shape, generator=g) * 0.02).to(device).requires_grad_()
                p.grad = torch.randn(shape, generator=g).to(device)
                params.append(p)
    return params


def median_ms(fn, device, repeats, inner=10, warmup=3):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize(device) if device.type == "cuda" else None
    ms = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        ms.append((time.perf_counter() - t0) * 1000.0 / inner)
    return statistics.median(ms)


def newton_schulz_batched(g, steps=5):
    # KellerJordan's quintic iteration on a (G, m, n) stack, bf16, wide orientation.
    a, b, c = 3.4445, -4.7750, 2.0315
    x = g.bfloat16()
    transposed = x.size(-2) > x.size(-1)
    if transposed:
        x = x.mT
    x = x / (x.norm(dim=(-2, -1), keepdim=True) + 1e-7)
    for _ in range(steps):
        A = x @ x.mT
        B = b * A + c * A @ A
        x = a * x + B @ x
    return x.mT if transposed else x


class GroupedMuon:
    """The same Muon update, same-shape parameters stacked: a handful of launches per group."""

    def __init__(self, params, lr=0.02, momentum=0.95, weight_decay=0.01):
        self.lr, self.mu, self.wd = lr, momentum, weight_decay
        groups = {}
        for p in params:
            groups.setdefault(tuple(p.shape), []).append(p)
        self.groups = list(groups.values())
        self.bufs = [[torch.zeros_like(p) for p in g] for g in self.groups]

    @torch.no_grad()
    def step(self):
        for ps, bufs in zip(self.groups, self.bufs):
            grads = [p.grad for p in ps]
            torch._foreach_lerp_(bufs, grads, 1 - self.mu)
            upd = torch._foreach_lerp(grads, bufs, self.mu)  # Nesterov
            o = newton_schulz_batched(torch.stack(upd))
            m, n = ps[0].shape
            scale = 0.2 * max(m, n) ** 0.5  # match AdamW's update RMS
            torch._foreach_mul_(ps, 1 - self.lr * self.wd)
            torch._foreach_add_(ps, list(o.to(ps[0].dtype).unbind(0)), alpha=-self.lr * scale)


def graph_replay_ms(step, device, repeats):
    s = torch.cuda.Stream(device)
    s.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(s):
        for _ in range(3):
            step()
    torch.cuda.current_stream(device).wait_stream(s)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step()
    return median_ms(graph.replay, device, repeats)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--targets", choices=["qv", "all"], default="qv")
    ap.add_argument("--r", type=int, default=8)
    ap.add_argument("--layers", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: default)")
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    params = make_params(args.targets, args.r, args.layers, device)
    res = {"bench": "peer-muon-step", "targets": args.targets, "r": args.r,
           "matrices": len(params), "device": str(device), "torch": torch.__version__,
           "threads": torch.get_num_threads()}
    if device.type == "cuda":
        res["gpu"] = torch.cuda.get_device_name(device)
    if hasattr(torch.optim, "Muon"):
        kw = dict(lr=0.02, weight_decay=0.01, momentum=0.95, nesterov=True)
        try:
            muon = torch.optim.Muon(params, adjust_lr_fn="match_rms_adamw", **kw)
        except (TypeError, ValueError):  # older signature: the default lr adjustment
            muon = torch.optim.Muon(params, **kw)
        res["torch_muon_ms"] = median_ms(muon.step, device, args.repeats)
    adamw = torch.optim.AdamW(params, lr=1e-4, foreach=True)
    res["torch_adamw_foreach_ms"] = median_ms(adamw.step, device, args.repeats)
    if device.type == "cuda":
        fused = torch.optim.AdamW(params, lr=1e-4, fused=True)
        res["torch_adamw_fused_ms"] = median_ms(fused.step, device, args.repeats)
    grouped = GroupedMuon(params)
    res["python_grouped_ms"] = median_ms(grouped.step, device, args.repeats)
    if device.type == "cuda":
        res["python_grouped_graph_ms"] = graph_replay_ms(grouped.step, device, args.repeats)
    print(json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
