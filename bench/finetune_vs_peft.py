#!/usr/bin/env python3
"""LoRA fine-tuning throughput on the CPU: lorascope (`lorascope_bench finetune`) against
transformers + PEFT (`bench/peer_finetune.py`), interleaved in one script, float32, random
token ids, the same model shapes, LoRA targets, batch and optimizers (AdamW; Muon on the
adapter matrices + AdamW on the head). Prints every run as a JSON line, then a table: median
tokens/s of each side over the repeats, the spread (min-max), and the ratio of medians.

    PY=$(bash scripts/reference_env.sh | tail -1)
    $PY bench/finetune_vs_peft.py --repeats 3                                  # every case
    $PY bench/finetune_vs_peft.py --cases small:qv --threads 1 --repeats 5
    $PY bench/finetune_vs_peft.py --lorascope build/bench/lorascope_bench \\
        --lorascope build-torch2/bench/lorascope_bench                         # both LibTorch builds

Run it with the reference environment's python (transformers, peft); each side runs in a child
process, one at a time, the order of the two alternating between repeats.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# model: (batch, seq, timed steps, extra arguments). The small LLaMA at the demo's batch 16 x 128;
# MiniLM at 16 x 64 and one LLaMA-3.2-1B-shaped block at 1 x 128 keep a repeat within minutes
# on a 2-core machine (its causal-LM head over 128,256 words is half of that model's work).
SIZES = {
    "small": (16, 128, 10, []),
    "minilm": (16, 64, 4, ["--minilm", os.path.join(REPO, ".cache/models/all-MiniLM-L6-v2")]),
    "llama1b": (1, 128, 2, ["--layers", "1"]),
}


def run_json(cmd, env):
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    if p.returncode != 0:
        sys.exit(f"finetune_vs_peft: {' '.join(cmd)} failed ({p.returncode}):\n{p.stderr[-2000:]}")
    return [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lorascope", action="append",
                    help="lorascope_bench binary (repeatable: one column per build); "
                         "default build/bench/lorascope_bench")
    ap.add_argument("--python", default=sys.executable, help="python with transformers + peft")
    ap.add_argument("--cases", default="small:qv,small:all,minilm:qv,minilm:all,llama1b:qv",
                    help="model:targets, comma-separated (models: small, minilm, llama1b)")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--optim", default="adamw,muon")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--jsonl", help="also append every run's JSON line to this file")
    args = ap.parse_args()
    binaries = args.lorascope or [os.path.join(REPO, "build/bench/lorascope_bench")]
    env = dict(os.environ)
    results = []  # (case, threads, impl label, optim, tokens/s)

    def record(lines, label):
        for l in lines:
            l["label"] = label
            print(json.dumps(l), flush=True)
            if args.jsonl:
                with open(args.jsonl, "a") as f:
                    f.write(json.dumps(l) + "\n")
            tokens = l["batch"] * l["seq"]
            results.append(((l["model"], l["targets"]), l["threads"], label, l["optim"],
                            l["tokens_per_s"], tokens / (l["cpu_ms_per_step"] / 1000.0)))

    for rep in range(args.repeats):
        for case in args.cases.split(","):
            model, targets = case.split(":")
            batch, seq, steps, extra = SIZES[model]
            common = ["--model", model, "--targets", targets, "--optim", args.optim,
                      "--batch", str(batch), "--seq", str(seq), "--steps", str(steps)] + extra
            for t in args.threads.split(","):
                sides = []
                for b in binaries:
                    label = "lorascope" if len(binaries) == 1 else "lorascope:" + b
                    # --layers is an option of lorascope_bench itself, before the subcommand.
                    layers = common[common.index("--layers"):][:2] if "--layers" in common else []
                    rest = [a for i, a in enumerate(common)
                            if not layers or i not in (common.index("--layers"), common.index("--layers") + 1)]
                    sides.append((label, [b, "--device", "cpu", "--threads", t] + layers +
                                  ["finetune", "--no-bf16"] + rest))
                sides.append(("peft", [args.python, os.path.join(REPO, "bench/peer_finetune.py"),
                                       "--device", "cpu", "--threads", t, "--no-bf16"] + common))
                if rep % 2:
                    sides.reverse()
                for label, cmd in sides:
                    record(run_json(cmd, env), label)

    labels = [("lorascope" if len(binaries) == 1 else "lorascope:" + b) for b in binaries]
    # Wall tokens/s, and tokens per CPU-second of the process (all threads): on a shared machine
    # the second is the steadier measure of the work; the first is what a user waits for.
    for col, what in ((4, "tokens/s (wall)"), (5, "tokens per CPU-second")):
        print(f"\n{what}: median over {args.repeats} repeats (min-max), ratio of medians\n")
        print("| model | targets | threads | optim | " +
              " | ".join(f"{l}" for l in labels + ["peft"]) + " | " +
              " | ".join(f"{l} / peft" for l in labels) + " |")
        print("| --- " * (4 + 2 * len(labels) + 1) + "|")
        for case, t, optim in sorted({(r[0], r[1], r[3]) for r in results}):
            cells, med = [], {}
            for l in labels + ["peft"]:
                v = [r[col] for r in results if (r[0], r[1], r[3], r[2]) == (case, t, optim, l)]
                med[l] = statistics.median(v) if v else float("nan")
                cells.append(f"{med[l]:.0f} ({min(v):.0f}-{max(v):.0f})" if v else "-")
            ratios = [f"{med[l] / med['peft']:.2f}x" for l in labels]
            print(f"| {case[0]} | {case[1]} | {t} | {optim} | " + " | ".join(cells + ratios) + " |")
    # Muon against AdamW within lorascope (target: within 5 %).
    for l in labels:
        for case, t in sorted({(r[0], r[1]) for r in results}):
            m = [r[4] for r in results if (r[0], r[1], r[2], r[3]) == (case, t, l, "muon")]
            a = [r[4] for r in results if (r[0], r[1], r[2], r[3]) == (case, t, l, "adamw")]
            if m and a:
                print(f"{l} {case[0]}:{case[1]} threads {t}: Muon / AdamW tokens/s = "
                      f"{statistics.median(m) / statistics.median(a):.3f}")


if __name__ == "__main__":
    main()
