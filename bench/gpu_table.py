#!/usr/bin/env python3
"""Markdown table of a bench/gpu_bench.sh run: lorascope beside its Python peers, with ratios.

Usage: gpu_table.py results.jsonl   (the JSON lines lorascope_bench and bench/peer_*.py print)
"""
import json
import sys


def load(path):
    rows = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                rows.append(json.loads(line))
            except ValueError:
                print(f"{path}:{n}: not JSON, skipped", file=sys.stderr)
    return rows


def find(rows, **kw):
    for r in rows:
        if all(r.get(k) == v for k, v in kw.items()):
            return r
    return {}


def fmt(x, spec=".3g"):
    return "-" if x is None else format(x, spec)


def ratio(a, b):
    return None if not a or not b else a / b


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    rows = load(argv[1])
    out = []
    peak = find(rows, bench="matmul-peak")
    gpu = peak.get("gpu", "?")
    out.append(f"Device: {gpu}; torch {peak.get('torch', '?')}; "
               f"bf16 matmul peak measured {fmt(peak.get('bf16_matmul_tflops'), '.0f')} TFLOP/s (8192^3)\n")
    out.append("### Optimizer step over the LoRA factors (ms per step, median)\n")
    out.append("| targets | matrices | lorascope Muon grouped | + CUDA graph | lorascope Muon loop | "
               "lorascope AdamW | torch.optim.Muon | torch AdamW foreach | torch AdamW fused | "
               "Python grouped | Python grouped graph | speed-up vs torch.optim.Muon |")
    out.append("|" + " --- |" * 12)
    for t in ("qv", "all"):
        ours, peer = find(rows, bench="muon-step", targets=t), find(rows, bench="peer-muon-step", targets=t)
        if not ours and not peer:
            continue
        out.append("| " + " | ".join([
            t, str(ours.get("matrices", peer.get("matrices", "?"))),
            fmt(ours.get("muon_grouped_ms")), fmt(ours.get("muon_grouped_graph_ms")),
            fmt(ours.get("muon_loop_ms")), fmt(ours.get("adamw_ms")),
            fmt(peer.get("torch_muon_ms")), fmt(peer.get("torch_adamw_foreach_ms")),
            fmt(peer.get("torch_adamw_fused_ms")), fmt(peer.get("python_grouped_ms")),
            fmt(peer.get("python_grouped_graph_ms")),
            fmt(ratio(peer.get("torch_muon_ms"), ours.get("muon_grouped_ms")), ".1f") + "x"]) + " |")
    out.append("\n### LoRA fine-tuning throughput (r = 8 on q, v; bf16 autocast; random tokens)\n")
    out.append("| optimizer | spectra logged | lorascope tokens/s | step ms | matmul TFLOP/s "
               "(% of peak) | peak GiB | PEFT tokens/s | PEFT peak GiB | ratio |")
    out.append("|" + " --- |" * 9)
    for optim in ("adamw", "muon"):
        peer = find(rows, bench="peer-finetune", optim=optim)
        for every in (0, 1):
            ours = find(rows, bench="finetune", optim=optim, monitor_every=every)
            if not ours:
                continue
            tf = ours.get("matmul_tflops")
            pct = ratio(tf, peak.get("bf16_matmul_tflops"))
            out.append("| " + " | ".join([
                optim, "every step" if every else "no",
                fmt(ours.get("tokens_per_s"), ",.0f"), fmt(ours.get("step_ms"), ".4g"),
                f"{fmt(tf)} ({fmt(None if pct is None else 100 * pct, '.0f')}%)",
                fmt(ours.get("peak_mem_gib")),
                fmt(peer.get("tokens_per_s"), ",.0f") if every == 0 else "",
                fmt(peer.get("peak_mem_gib")) if every == 0 else "",
                (fmt(ratio(ours.get("tokens_per_s"), peer.get("tokens_per_s")), ".2f") + "x")
                if every == 0 else ""]) + " |")
        base, logged = (find(rows, bench="finetune", optim=optim, monitor_every=e) for e in (0, 1))
        if base.get("step_ms") and logged.get("step_ms"):
            out.append(f"\nSpectral logging every step with {optim}: "
                       f"{100 * (logged['step_ms'] / base['step_ms'] - 1):+.1f}% step time\n")
    failed = [r.get("name") for r in rows if r.get("bench") == "failed"]
    if failed:
        out.append(f"\nFailed runs: {', '.join(failed)} (see their logs)")
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
