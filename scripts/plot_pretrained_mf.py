#!/usr/bin/python3
"""Figures for `lorascope pretrained-mf` sweeps (lora-learning-dynamics-matrix-factorization.md).

Usage: /usr/bin/python3 scripts/plot_pretrained_mf.py --out FIGDIR [--x t|step] SWEEP_DIR...
(`lorascope plot SWEEP_DIR` comes here when index.json says "command": "pretrained-mf".)

Runs are grouped by their index.json overrides without "seed"; each curve is the mean over seeds
with a band of one standard deviation, taken in log10 for the loss and for 1 - cos (they span
many decades). Writes into FIGDIR:
  fig1_dynamics.png       loss | log10(1 - cos(gamma_1, U_Z1^S)) | smallest-alpha small-init
                          run: loss, alignment and ||Z1|| together      (paper Fig. 1, 3, 4)
  final_loss_vs_alpha.png mean log10 final loss against alpha, error bars = std over seeds
  figures.json            the list of figures written
Exit 2 with "plot_pretrained_mf.py: PATH: what was expected" on bad input.
"""
import argparse
import json
import math
import sys
import warnings
from pathlib import Path

import run_files
from run_files import NAN, InputError, load_metrics, num, read_json

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

DPI = 120
COMMAND = "pretrained-mf"


def handles(dirs):
    """True when every directory is a pretrained-mf sweep (so plot_runs.py can hand over)."""
    def is_ours(p):
        try:
            return read_json(Path(p) / "index.json", "sweep index").get("command") == COMMAND
        except InputError:
            return False
    return bool(dirs) and all(is_ours(d) for d in dirs)


def label_of(overrides):
    parts = [f"{k.split('.')[-1]}={v}" for k, v in sorted(overrides.items()) if k not in ("seed", "name")]
    name = overrides.get("name")
    return " ".join(([str(name)] if name else []) + parts) or "run"


def load_groups(dirs):
    groups = {}
    for d in map(Path, dirs):
        index = read_json(d / "index.json", "sweep index with a 'runs' list")
        entries = index.get("runs")
        if not isinstance(entries, list):
            raise InputError(d / "index.json", "expected 'runs': a list of {name, dir, overrides}")
        for e in entries:
            rd = d / str(e.get("dir") or e.get("name") or "")
            cfg = read_json(rd / "config.json", "the run's resolved config")
            recs = load_metrics(rd / "metrics.jsonl")
            overrides = dict(e.get("overrides") or {})
            key = label_of(overrides)
            lora = cfg.get("lora", {})
            series = label_of({k: v for k, v in overrides.items() if k != "lora.alpha"})
            g = groups.setdefault(key, {"label": key, "series": series, "init": lora.get("init", "?"),
                                        "alpha": num(lora.get("alpha")),
                                        "pair": cfg.get("task", {}).get("pair", "?"), "runs": []})
            g["runs"].append({
                "seed": cfg.get("seed"),
                "step": [num(r["step"]) for r in recs],
                "t": [num(r.get("t")) for r in recs],
                "loss": [num(r.get("loss")) for r in recs],
                "mis": [num(r.get("one_minus_cos")) for r in recs],
                "z1": [num(r.get("z1_norm")) for r in recs],
            })
    if not groups:
        raise InputError(dirs[0], "no runs listed in index.json")
    return sorted(groups.values(), key=lambda g: (g["pair"], g["init"], g["alpha"]))


def log10s(vals):
    return [math.log10(v) if math.isfinite(v) and v > 0 else NAN for v in vals]


def band(runs, key, xkey):
    """x of the shortest run, and mean/std over seeds of log10(key) (NaN-aware)."""
    n = min(len(r[key]) for r in runs)
    ys = np.array([log10s(r[key][:n]) for r in runs], dtype=float)
    with warnings.catch_warnings():  # an all-NaN column (1 - cos = 0 everywhere) is a gap
        warnings.simplefilter("ignore", RuntimeWarning)
        mean, std = np.nanmean(ys, axis=0), np.nanstd(ys, axis=0)
    return np.array(runs[0][xkey][:n]), mean, std


def style(group, k):
    return {"color": f"C{k % 10}", "ls": "-" if group["init"] == "small" else "--", "lw": 1.5}


def fig_dynamics(groups, xkey, xlabel, out, written):
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6))
    for k, g in enumerate(groups):
        for ax, key in ((axes[0], "loss"), (axes[1], "mis")):
            x, mean, std = band(g["runs"], key, xkey)
            s = style(g, k)
            ax.plot(x, mean, label=f"{g['label']} ({len(g['runs'])} seeds)", **s)
            ax.fill_between(x, mean - std, mean + std, color=s["color"], alpha=0.15, lw=0)
    axes[0].set(xlabel=xlabel, ylabel="log10 loss", title="loss (mean ± std over seeds)")
    axes[1].set(xlabel=xlabel, ylabel="log10(1 - cos(γ1, U_Z1^S))", title="alignment of U_Z1^S with γ1 = [g; v]")
    for ax in axes[:2]:
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize="x-small")
    # Right panel: the smallest alpha of small init, its first seed.
    small = [g for g in groups if g["init"] == "small"]
    ax = axes[2]
    if small:
        g = min(small, key=lambda g: g["alpha"])
        r = g["runs"][0]
        x = r[xkey]
        ax.plot(x, log10s(r["loss"]), color="C0", label="log10 loss")
        ax.plot(x, log10s(r["mis"]), color="C1", label="log10(1 - cos)")
        ax.set(xlabel=xlabel, ylabel="log10", title=f"{g['label']}, seed {r['seed']}")
        tw = ax.twinx()
        tw.plot(x, r["z1"], color="C2", label="||Z1||")
        tw.set_ylabel("||Z1||")
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = tw.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, fontsize="x-small", loc="center right")
        ax.grid(alpha=0.3)
    else:
        ax.text(0.5, 0.5, "no small-init runs", ha="center", transform=ax.transAxes)
    fig.suptitle("LoRA on a pretrained W2 W1 (solid: small init, dashed: spectral init)", fontsize="medium")
    fig.tight_layout()
    save(fig, out, "fig1_dynamics.png", written)


def fig_final(groups, out, written):
    fig, ax = plt.subplots(figsize=(7, 4.8))
    series = {}  # one line per group of runs that differ only in alpha
    for g in groups:
        series.setdefault(g["series"], []).append(g)
    for k, (name, gs) in enumerate(sorted(series.items())):
        gs = sorted(gs, key=lambda g: g["alpha"])
        finals = [[math.log10(r["loss"][-1]) if r["loss"] and r["loss"][-1] > 0 else NAN
                   for r in g["runs"]] for g in gs]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = [float(np.nanmean(f)) for f in finals]
            std = [float(np.nanstd(f)) for f in finals]
        ax.errorbar([g["alpha"] for g in gs], mean, yerr=std, marker="o", capsize=3,
                    ls="-" if gs[0]["init"] == "small" else "--", color=f"C{k % 10}",
                    label=f"{name} ({gs[0]['pair']} pair)")
    ax.set_xscale("log")
    ax.set(xlabel="initialization scale α", ylabel="log10 final loss (mean ± std over seeds)",
           title="final loss against α")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small")
    fig.tight_layout()
    save(fig, out, "final_loss_vs_alpha.png", written)


def save(fig, out, fname, written):
    fig.savefig(out / fname, dpi=DPI)
    plt.close(fig)
    print(out / fname)
    written.append(fname)


def plot(dirs, out, xkey="t"):
    run_files.PROG = "plot_pretrained_mf.py"
    try:
        groups = load_groups(dirs)
    except InputError as e:
        print(e, file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    xlabel = "t = step × lr (flow time)" if xkey == "t" else "step"
    written = []
    fig_dynamics(groups, xkey, xlabel, out, written)
    fig_final(groups, out, written)
    (out / "figures.json").write_text(json.dumps({"figures": written}, indent=2) + "\n")
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(prog="plot_pretrained_mf.py", description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--x", choices=("step", "t"), default="t")
    ap.add_argument("dirs", nargs="+", metavar="SWEEP_DIR")
    args = ap.parse_args(argv)
    return plot(args.dirs, Path(args.out), args.x)


if __name__ == "__main__":
    sys.exit(main())
