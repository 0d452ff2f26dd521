#!/usr/bin/python3
"""Summary of the final-layer init-scale sweep (configs/lm/init_scale_spam.json): per init scale,
mean and std over seeds of the final training loss, the validation and test loss and accuracy.

Usage: /usr/bin/python3 scripts/init_scale_summary.py OUT_DIR

OUT_DIR is `lorascope finetune --config configs/lm/init_scale_spam.json --out OUT_DIR` (index.json
and one run dir per grid point). The final training loss is the mean of the logged minibatch
losses over the last epoch (one minibatch is too noisy to rank scales). Writes
OUT_DIR/init_scale_summary.md and prints it. Exit 2 with "init_scale_summary.py: PATH: ..." on
bad input.
"""
import math
import sys
from pathlib import Path

import run_files
from run_files import InputError, load_metrics, num, read_json

run_files.PROG = "init_scale_summary.py"


def mean_std(vals):
    vals = [v for v in vals if math.isfinite(v)]
    if not vals:
        return math.nan, math.nan, 0
    m = sum(vals) / len(vals)
    sd = math.sqrt(sum((v - m) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else 0.0
    return m, sd, len(vals)


def run_stats(d):
    cfg = read_json(d / "config.json", "the run's resolved config")
    summary = read_json(d / "summary.json", "run summary (did the run finish?)")
    scale = num(cfg.get("lora", {}).get("init_scale"))
    recs = [r for r in load_metrics(d / "metrics.jsonl") if math.isfinite(num(r.get("loss")))]
    last_epoch = max((num(r.get("epoch")) for r in recs), default=math.nan)
    tail = [num(r["loss"]) for r in recs if num(r.get("epoch")) == last_epoch]
    val, test = summary.get("validation") or {}, summary.get("test") or {}
    return scale, {"train_loss": sum(tail) / len(tail) if tail else math.nan,
                   "val_loss": num(val.get("loss")), "test_loss": num(test.get("loss")),
                   "test_accuracy": num(test.get("accuracy")),
                   "majority": num(summary.get("majority_baseline"))}


def main(argv):
    if len(argv) != 1 or argv[0].startswith("-"):
        print("usage: /usr/bin/python3 scripts/init_scale_summary.py OUT_DIR", file=sys.stderr)
        return 2
    out = Path(argv[0])
    try:
        index = read_json(out / "index.json", "the index of `lorascope finetune` with a grid")
        runs = index.get("runs")
        if not isinstance(runs, list) or not runs:
            raise InputError(out / "index.json", "expected a non-empty 'runs' list")
        groups = {}
        for e in runs:
            scale, st = run_stats(out / str(e.get("dir") or e.get("name")))
            groups.setdefault(scale, []).append(st)
    except InputError as e:
        print(e, file=sys.stderr)
        return 2
    keys = ("train_loss", "val_loss", "test_loss", "test_accuracy")
    lines = ["| init std | seeds | final-epoch train loss | val loss | test loss | test accuracy |",
             "|---|---|---|---|---|---|"]
    for scale in sorted(groups, reverse=True):
        cells = []
        for k in keys:
            m, sd, n = mean_std([s[k] for s in groups[scale]])
            cells.append(f"{m:.4f} ± {sd:.4f}")
        lines.append(f"| {scale:g} | {len(groups[scale])} | " + " | ".join(cells) + " |")
    maj = mean_std([s["majority"] for g in groups.values() for s in g])[0]
    text = "\n".join(lines) + f"\n\nmean ± std over seeds; majority-class test accuracy {maj:.4f}.\n"
    (out / "init_scale_summary.md").write_text(text)
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
