#!/usr/bin/python3
"""Figures of `lorascope analyze` (the C++ side computes every number; this only draws).

Usage: /usr/bin/python3 scripts/plot_analysis.py --out FIGDIR ANALYSIS_JSON

Writes into FIGDIR:
  similarity_A.png        phi(i, j) = ||U_i^T U_j||_F^2 / min(i, j) between the two runs' lora_A
                          right singular vectors, one heat map per layer (LoRA paper, Fig. 3)
  similarity_B.png        the same for lora_B's left singular vectors
  alignment.png           per layer: mean cos^2 of the principal angles between delta W's
                          left/right singular subspaces and W's top-k ones
  intruders.png           per layer: intruder dimensions among the top-k singular vectors of
                          W + delta W, and the largest intruding singular value
  esd_alpha.png           per layer: weightwatcher's ESD power-law alpha of W and of W + delta W
  over_training.png       alignment and intruder counts per logged step (only when the runs'
                          metrics.jsonl carry them)
  figures.json            the list of figures written
Exit 2 with "plot_analysis.py: PATH: what was expected" on bad input.
"""
import argparse
import json
import math
import sys
from pathlib import Path

import run_files
from run_files import NAN, InputError, num, read_json

run_files.PROG = "plot_analysis.py"

import matplotlib
matplotlib.use("Agg")  # headless
import matplotlib.pyplot as plt

DPI = 120


def short(module):
    # "model.layers.3.self_attn.q_proj" -> "3.q_proj"; "bert.encoder.layer.0.attention.self.query" -> "0.query"
    parts = module.split(".")
    for i, p in enumerate(parts):
        if p.isdigit():
            return f"{p}.{parts[-1]}"
    return module


def grid_shape(n):
    cols = min(n, 6)
    return math.ceil(n / cols), cols


def similarity_figure(sim, factor, path):
    layers = sim["layers"]
    rows, cols = grid_shape(len(layers))
    fig, axes = plt.subplots(rows, cols, figsize=(2.4 * cols, 2.4 * rows + 0.6), squeeze=False)
    image = None
    for ax, layer in zip(axes.flat, layers):
        g = [[num(v) for v in row] for row in layer[f"phi_{factor}"]]
        image = ax.imshow(g, vmin=0, vmax=1, cmap="viridis", origin="upper",
                          extent=(0.5, len(g[0]) + 0.5, len(g) + 0.5, 0.5))
        ax.set_title(short(layer["module"]), fontsize=8)
        ax.set_xlabel(f"j ({sim['runs'][1]})", fontsize=7)
        ax.set_ylabel(f"i ({sim['runs'][0]})", fontsize=7)
        ax.tick_params(labelsize=6)
    for ax in list(axes.flat)[len(layers):]:
        ax.axis("off")
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, label="phi(i, j)")
    what = "lora_A right" if factor == "A" else "lora_B left"
    fig.suptitle(f"subspace similarity of {what} singular vectors: {sim['runs'][0]} vs {sim['runs'][1]}")
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def per_layer_figure(runs, panels, title, path):
    fig, axes = plt.subplots(len(panels), 1, figsize=(max(6, 0.35 * len(runs[0]["layers"]) + 2), 2.8 * len(panels)),
                             squeeze=False)
    for ax, (label, get, log) in zip(axes[:, 0], panels):
        for ri, run in enumerate(runs):
            ys = [get(l) for l in run["layers"]]
            xs = [x + 0.1 * ri for x in range(len(ys))]
            ax.plot(xs, ys, "o-", ms=4, lw=1, label=run["run"])
        ax.set_ylabel(label)
        if log:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.set_xticks(range(len(runs[0]["layers"])))
        ax.set_xticklabels([short(l["module"]) for l in runs[0]["layers"]], rotation=60, fontsize=7)
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def esd_figure(runs, path):
    fig, ax = plt.subplots(figsize=(max(6, 0.35 * len(runs[0]["layers"]) + 2), 3.5))
    xs = range(len(runs[0]["layers"]))
    ax.plot(xs, [num(l["esd_W"]["alpha"]) for l in runs[0]["layers"]], "ks", ms=5, label="W (base)")
    for ri, run in enumerate(runs):
        ax.plot([x + 0.15 * (ri + 1) for x in xs], [num(l["esd_merged"]["alpha"]) for l in run["layers"]], "o",
                ms=5, label=f"W + delta W ({run['run']})")
    ax.set_xticks(list(xs))
    ax.set_xticklabels([short(l["module"]) for l in runs[0]["layers"]], rotation=60, fontsize=7)
    ax.set_ylabel("ESD power-law alpha")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("weightwatcher's alpha per layer (2-6: well trained, heavy-tailed)")
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def history_figure(runs, path):
    fields = [("align_left", "alignment (left)"), ("align_right", "alignment (right)"), ("intruders", "intruders")]
    fig, axes = plt.subplots(len(fields), len(runs), figsize=(5 * len(runs), 2.6 * len(fields)), squeeze=False)
    for ci, run in enumerate(runs):
        h = run["history"]
        steps = h.get("steps", [])
        for ri, (field, label) in enumerate(fields):
            ax = axes[ri, ci]
            for name, series in sorted(h.get("adapters", {}).items()):
                ax.plot(steps, [num(v) for v in series.get(field, [])], lw=0.8, alpha=0.7)
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
        axes[0, ci].set_title(run["run"])
        axes[-1, ci].set_xlabel("step")
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("analysis")
    a = ap.parse_args()
    try:
        doc = read_json(Path(a.analysis), "analysis.json written by lorascope analyze")
        runs = doc.get("runs")
        if not isinstance(runs, list) or not runs or not all(isinstance(r, dict) and r.get("layers") for r in runs):
            raise InputError(a.analysis, "runs: expected a list of runs with layers")
    except InputError as e:
        print(e, file=sys.stderr)
        return 2
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    written = []

    def save(name, draw, *args):
        draw(*args, out / name)
        written.append(name)

    if isinstance(doc.get("similarity"), dict) and doc["similarity"].get("layers"):
        for factor in ("A", "B"):
            save(f"similarity_{factor}.png", similarity_figure, doc["similarity"], factor)
    save("alignment.png", per_layer_figure, runs, [
        ("left (mean cos^2)", lambda l: num(l["align_left"]), False),
        ("right (mean cos^2)", lambda l: num(l["align_right"]), False)],
        "alignment of delta W's singular subspaces with W's top-k (1: inside, ~k/d: random)")
    save("intruders.png", per_layer_figure, runs, [
        ("intruder dimensions", lambda l: num(l["intruders"]), False),
        ("largest intruder sigma", lambda l: num(l["intruder_sv"]), False)],
        f"intruder dimensions among the top {runs[0].get('intruder_top_k', 10)} singular vectors of W + delta W\n"
        f"(max |cos| < {runs[0].get('intruder_epsilon', 0.5)})")
    save("esd_alpha.png", esd_figure, runs)
    if any(r.get("history", {}).get("steps") for r in runs):
        save("over_training.png", history_figure, runs)
    (out / "figures.json").write_text(json.dumps({"figures": written}, indent=1) + "\n")
    for w in written:
        print(out / w)
    return 0


if __name__ == "__main__":
    sys.exit(main())
