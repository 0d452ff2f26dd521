#!/usr/bin/env python3
"""Cost of the spectral monitor (every adapter's singular values, effective and stable rank):

1. in a fine-tune: `lorascope_bench finetune --monitor-every 0,1,10` on the demo's small LLaMA
   (float32, batch 16 x 128, CPU), the order of the three alternating between repeats;
   overhead = step time with logging / step time without - 1;
2. per log, directly: `lorascope_bench spectra` (thin QRs + r x r SVD per adapter) against the
   post-hoc way WeightWatcher-style tools take, a full SVD of each scaling * B A (NumPy
   np.linalg.svd(compute_uv=False) and torch.linalg.svdvals, same shapes, float32), on the small
   LLaMA's 8 q/v adapters and LLaMA-3.2-1B's 32 q/v adapters (r = 8).

    PY=$(bash scripts/reference_env.sh | tail -1)
    $PY bench/monitor_cost.py --repeats 3 --threads 1
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHAPES = {  # (out, in) of the q and v projections, layers
    "small": ([(128, 128), (64, 128)], 4),
    "llama1b": ([(2048, 2048), (512, 2048)], 16),
}


def run_json(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if p.returncode != 0:
        sys.exit(f"monitor_cost: {' '.join(cmd)} failed:\n{p.stderr[-2000:]}")
    return [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]


def posthoc_ms(model, r, repeats):
    """Median ms of one post-hoc log: full SVD of every scaling * B A, NumPy and torch."""
    import numpy as np
    import torch
    g = np.random.default_rng(0)
    shapes, layers = SHAPES[model]
    mats = []
    for _ in range(layers):
        for out, inp in shapes:
            A = (g.standard_normal((r, inp)) / np.sqrt(inp)).astype(np.float32)
            B = (g.standard_normal((out, r)) * 0.02).astype(np.float32)
            mats.append((A, B))
    out = {}
    for name, fn in [
        ("numpy_svd_ms", lambda: [np.linalg.svd(2.0 * B @ A, compute_uv=False) for A, B in mats]),
        ("torch_svdvals_ms", lambda: [torch.linalg.svdvals(2.0 * torch.from_numpy(B) @ torch.from_numpy(A))
                                      for A, B in mats]),
    ]:
        if model == "small":
            fn()  # warm-up; a 2048 x 2048 SVD needs none, and 32 of them take seconds
        ms = []
        for _ in range(repeats if model == "small" else 1):
            t0 = time.perf_counter()
            fn()
            ms.append((time.perf_counter() - t0) * 1000.0)
        out[name] = statistics.median(ms)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lorascope", default=os.path.join(REPO, "build/bench/lorascope_bench"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps", type=int, default=20, help="timed fine-tune steps per variant")
    args = ap.parse_args()
    # NumPy's OpenBLAS sizes its own pool from the core count: held to --threads like the rest.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", str(args.threads))
    import torch
    torch.set_num_threads(args.threads)
    b = [args.lorascope, "--device", "cpu", "--threads", str(args.threads)]
    step = {0: [], 1: [], 10: []}
    per_log = {m: {"lorascope_ms": [], "numpy_svd_ms": [], "torch_svdvals_ms": []} for m in SHAPES}
    for rep in range(args.repeats):
        order = "0,1,10" if rep % 2 == 0 else "10,1,0"
        for l in run_json(b + ["finetune", "--no-bf16", "--model", "small", "--batch", "16", "--seq",
                               "128", "--optim", "adamw", "--steps", str(args.steps),
                               "--monitor-every", order]):
            print(json.dumps(l), flush=True)
            step[l["monitor_every"]].append(l["step_ms"])
        for model in SHAPES:
            l = run_json(b + ["spectra", "--model", model, "--targets", "qv", "--r", "8",
                              "--repeats", "5"])[0]
            l.update(posthoc_ms(model, 8, 5))
            l["adapter_shapes"] = SHAPES[model]
            print(json.dumps(l), flush=True)
            per_log[model]["lorascope_ms"].append(l["ms_per_log"])
            per_log[model]["numpy_svd_ms"].append(l["numpy_svd_ms"])
            per_log[model]["torch_svdvals_ms"].append(l["torch_svdvals_ms"])
    med = {k: statistics.median(v) for k, v in step.items()}
    print(f"\nthreads {args.threads}, {args.repeats} repeats; small LLaMA fine-tune step (AdamW, "
          f"16 x 128), ms, median (min-max):")
    for k, v in step.items():
        print(f"  monitor every {k or 'never'}: {med[k]:.1f} ({min(v):.1f}-{max(v):.1f})"
              + (f"  overhead {100 * (med[k] / med[0] - 1):+.1f} %" if k else ""))
    print("\n| adapters | lorascope ms / log | NumPy full SVD ms / log | torch svdvals ms / log | "
          "NumPy / lorascope | share of a small-LLaMA step at every 10 |")
    print("| --- " * 6 + "|")
    for model, d in per_log.items():
        m = {k: statistics.median(v) for k, v in d.items()}
        share = f"{100 * m['lorascope_ms'] / 10 / med[0]:.3f} %" if model == "small" else "-"
        print(f"| {model} q/v r = 8 | {m['lorascope_ms']:.3f} ({min(d['lorascope_ms']):.3f}-"
              f"{max(d['lorascope_ms']):.3f}) | {m['numpy_svd_ms']:.1f} | {m['torch_svdvals_ms']:.1f} | "
              f"{m['numpy_svd_ms'] / m['lorascope_ms']:.0f}x | {share} |")


if __name__ == "__main__":
    main()
