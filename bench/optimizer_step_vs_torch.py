#!/usr/bin/env python3
"""Optimizer step over LLaMA-3.2-1B-shaped LoRA adapters on the CPU: lorascope's grouped Muon,
its per-parameter Muon loop and its AdamW (`lorascope_bench muon-step`) against
torch.optim.Muon and torch.optim.AdamW (`bench/peer_muon_step.py`), interleaved, REPEATS
times; prints each run's JSON line and a table of medians, spreads and ratios.

    PY=$(bash scripts/reference_env.sh | tail -1)
    $PY bench/optimizer_step_vs_torch.py --repeats 3 --threads 1
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASES = [("qv", 8), ("all", 16)]  # 64 matrices at r = 8; 224 at r = 16


def run_json(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if p.returncode != 0:
        sys.exit(f"optimizer_step_vs_torch: {' '.join(cmd)} failed:\n{p.stderr[-2000:]}")
    return [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")][-1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lorascope", default=os.path.join(REPO, "build/bench/lorascope_bench"))
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--inner-repeats", type=int, default=5, help="rounds of 10 steps per run")
    args = ap.parse_args()
    rows = {}
    for rep in range(args.repeats):
        for targets, r in CASES:
            common = ["--targets", targets, "--r", str(r), "--repeats", str(args.inner_repeats)]
            sides = [[args.lorascope, "--device", "cpu", "--threads", str(args.threads), "--layers",
                      "16", "muon-step"] + common,
                     [args.python, os.path.join(REPO, "bench/peer_muon_step.py"), "--device", "cpu",
                      "--threads", str(args.threads), "--layers", "16"] + common]
            if rep % 2:
                sides.reverse()
            for cmd in sides:
                res = run_json(cmd)
                print(json.dumps(res), flush=True)
                for k, v in res.items():
                    if k.endswith("_ms"):
                        rows.setdefault((targets, r, res["matrices"]), {}).setdefault(k, []).append(v)
    print(f"\nthreads {args.threads}; ms per step, median (min-max) of {args.repeats} runs\n")
    print("| adapters | lorascope grouped Muon | lorascope Muon loop | lorascope AdamW | "
          "torch.optim.Muon | torch.optim.AdamW (foreach) | torch.optim.Muon / grouped Muon | "
          "torch AdamW / lorascope AdamW |")
    print("| --- " * 8 + "|")
    for (targets, r, n), d in rows.items():
        med = {k: statistics.median(v) for k, v in d.items()}
        cell = lambda k: f"{med[k]:.2f} ({min(d[k]):.2f}-{max(d[k]):.2f})" if k in d else "-"
        ratio = lambda a, b: f"{med[a] / med[b]:.1f}x" if a in med and b in med else "-"
        print(f"| {n} ({targets}, r = {r}) | {cell('muon_grouped_ms')} | {cell('muon_loop_ms')} | "
              f"{cell('adamw_ms')} | {cell('torch_muon_ms')} | {cell('torch_adamw_foreach_ms')} | "
              f"{ratio('torch_muon_ms', 'muon_grouped_ms')} | "
              f"{ratio('torch_adamw_foreach_ms', 'adamw_ms')} |")


if __name__ == "__main__":
    main()
