#!/usr/bin/python3
"""Plot lorascope eos sweeps (deep-mf-edge-of-stability.md, Fig. 1, 2, 5, 16).

Usage: /usr/bin/python3 scripts/plot_eos.py --out FIGDIR SWEEP_DIR...   (or via plot_runs.py,
which hands over sweeps whose index.json says "command": "eos").

Writes into FIGDIR:
  eos_bifurcation.png   late-phase values of u1^T W v1 vs eta, one panel per run (Fig. 1 left),
                        dashed: 2/lambda_1 and 2/lambda_2 of Lemma 1
  eos_sharpness.png     late sharpness (both points of the last 2 steps) vs eta with the curve
                        2/eta (Fig. 1 right, Fig. 2)
  eos_depth_map.png     converged / oscillating / diverged / not settled over (eta, depth) with Lemma 1's
                        boundary eta = 2/(2c L s1^(2-2/L))   (Fig. 16; sweeps with several depths)
  eos_traces_<run>.png  projections u_i^T W v_i and sharpness vs step, one column per eta, for
                        runs with at most 4 learning rates (Fig. 5)
  figures.json          the list of figures written
Exit 2 with "plot_eos.py: PATH: what was expected" on bad input.
"""
import argparse
import json
import math
import re
import sys
from pathlib import Path

import run_files
from run_files import InputError, load_metrics, num, read_json

run_files.PROG = "plot_eos.py"

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

DPI = 120


def collect(dirs):
    runs = []
    for d in map(Path, dirs):
        index = read_json(d / "index.json", "a lorascope eos sweep index")
        if index.get("command") != "eos":
            raise InputError(d / "index.json", f"expected command 'eos', got {index.get('command')!r}")
        for entry in index.get("runs", []):
            rd = d / entry["dir"]
            if not (rd / "summary.json").exists():
                run_files.warn(f"{rd}: no summary.json (run unfinished); skipped")
                continue
            s = read_json(rd / "summary.json", "an eos run summary")
            if not isinstance(s.get("points"), list):
                raise InputError(rd / "summary.json", "expected a 'points' list")
            runs.append({"name": entry["name"], "dir": rd, "summary": s})
    if not runs:
        raise InputError(dirs[0], "no finished eos runs")
    return runs


def theory_lines(ax, th, vertical=True):
    for key, style, label in (("lr_threshold", "--", "2/λ1"), ("lr_second_component", ":", "2/λ2")):
        if key in th:
            ax.axvline(th[key], color="gray", ls=style, lw=1, label=f"{label} = {th[key]:.5g}")


def fig_bifurcation(runs, out, written):
    n = len(runs)
    fig, axes = plt.subplots(n, 1, figsize=(8, 3.2 * n), squeeze=False)
    for ax, r in zip(axes[:, 0], runs):
        s = r["summary"]
        for p in s["points"]:
            if p.get("status") != "completed":
                ax.plot([p["lr"]], [0], "rx", ms=4)
                continue
            vals = p.get("values", [])
            ax.plot([p["lr"]] * len(vals), vals, "k.", ms=2)
            pred = p.get("predicted_two_cycle")
            if pred:
                ax.plot([p["lr"]] * 2, pred, "o", mfc="none", mec="tab:orange", ms=4)
        theory_lines(ax, s["theory"])
        ax.axhline(s["target_sv"][0], color="tab:blue", lw=0.6, alpha=0.5)
        ax.set(xlabel="η", ylabel="late u1ᵀ W v1", title=f"{r['name']} (L={s['depth']}, {s['network']}, "
               f"{s['convention']} convention; orange: Thm 1 2-cycle; red x: diverged)")
        ax.legend(fontsize="x-small")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    save(fig, out, "eos_bifurcation.png", written)


def fig_sharpness(runs, out, written):
    fig, ax = plt.subplots(figsize=(8, 4.5))
    lo, hi = math.inf, 0
    for k, r in enumerate(runs):
        xs, ys = [], []
        for p in r["summary"]["points"]:
            for sh in p.get("sharpness_last2", []):
                xs.append(p["lr"])
                ys.append(num(sh[0]))
            lo, hi = min(lo, p["lr"]), max(hi, p["lr"])
        ax.plot(xs, ys, ".", ms=4, label=r["name"], color=f"C{k}")
        ax.axhline(r["summary"]["theory"]["lambda_1"], color=f"C{k}", lw=0.6, ls="--")
    if math.isfinite(lo) and hi > 0:
        grid = [lo + (hi - lo) * i / 200 for i in range(201)]
        ax.plot(grid, [2 / x for x in grid], "k-", lw=1, label="2/η")
    ax.set(xlabel="η", ylabel="top Hessian eigenvalue (last 2 steps)",
           title="sharpness vs 2/η (dashed: λ1 = L s1^(2-2/L) of Lemma 1)")
    ax.legend(fontsize="x-small")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save(fig, out, "eos_sharpness.png", written)


def fig_depth_map(runs, out, written):
    depths = sorted({r["summary"]["depth"] for r in runs})
    if len(depths) < 2:
        return
    fig, ax = plt.subplots(figsize=(8, 4.5))
    colors = {"converged": "black", "oscillating": "lightgray", "diverged": "tab:red",
              "not settled (drifting or at a saddle)": "tab:blue"}
    seen = set()
    for r in runs:
        s = r["summary"]
        s1 = s["target_sv"][0]
        for p in s["points"]:
            if p.get("status") != "completed":
                state = "diverged"
            elif p.get("drifting"):
                state = "not settled (drifting or at a saddle)"
            elif p.get("oscillating_components", 0) > 0:
                state = "oscillating"
            elif num(p.get("final_loss")) < 1e-8 * s1 * s1:
                state = "converged"
            else:
                state = "not settled (drifting or at a saddle)"
            ax.plot(p["lr"], s["depth"], "s", color=colors[state], ms=7, mec="none",
                    label=None if state in seen else state)
            seen.add(state)
    s0 = runs[0]["summary"]
    c, s1 = s0["theory"]["loss_scale"], s0["target_sv"][0]
    ls = [depths[0] + (depths[-1] - depths[0]) * i / 200 for i in range(201)]
    ax.plot([2 / (2 * c * L * s1 ** (2 - 2 / L)) for L in ls], ls, "tab:orange", lw=1.5,
            label="η = 2/(L s1^(2-2/L))")
    ax.set(xlabel="η", ylabel="depth L", title=f"stability of GD at the minimum, s1 = {s1} (Fig. 16)")
    ax.legend(fontsize="x-small", loc="upper right")
    fig.tight_layout()
    save(fig, out, "eos_depth_map.png", written)


def fig_traces(r, out, written):
    pts = r["summary"]["points"]
    if len(pts) > 4:
        return
    recs = load_metrics(r["dir"] / "metrics.jsonl", required=False)
    fig, axes = plt.subplots(2, len(pts), figsize=(4.5 * len(pts), 6), squeeze=False)
    for col, p in enumerate(pts):
        rows = [q for q in recs if q.get("lr") == p["lr"]]
        top, bottom = axes[0, col], axes[1, col]
        logged = [q for q in rows if "proj" in q]
        k = max((len(q["proj"]) for q in logged), default=0)
        for i in range(k):
            top.plot([q["step"] for q in logged], [num(q["proj"][i]) for q in logged], lw=0.8,
                     label=f"u{i + 1}ᵀ W v{i + 1}")
        top.set(title=f"η = {p['lr']:.5g}", xlabel="step")
        top.legend(fontsize="x-small")
        sharp = [q for q in rows if "sharpness" in q]
        bottom.plot([q["step"] for q in sharp], [num(q["sharpness"][0]) for q in sharp], ".-", ms=3,
                    lw=0.6, label="sharpness")
        bottom.axhline(2 / p["lr"], color="k", ls="--", lw=1, label="2/η")
        bottom.set(xlabel="step")
        bottom.legend(fontsize="x-small")
    fig.suptitle(f"{r['name']}: components (projections, no sorting) and sharpness", fontsize="medium")
    fig.tight_layout()
    save(fig, out, f"eos_traces_{slug(r['name'])}.png", written)


def slug(name):
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def save(fig, out, name, written):
    fig.savefig(out / name, dpi=DPI)
    plt.close(fig)
    written.append(name)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="plot_eos.py", description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("dirs", nargs="+", metavar="SWEEP_DIR")
    args, _ = ap.parse_known_args(argv)
    try:
        runs = collect(args.dirs)
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        written = []
        fig_bifurcation(runs, out, written)
        fig_sharpness(runs, out, written)
        fig_depth_map(runs, out, written)
        for r in runs:
            fig_traces(r, out, written)
    except InputError as e:
        print(e, file=sys.stderr)
        return 2
    (out / "figures.json").write_text(json.dumps({"figures": written}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
