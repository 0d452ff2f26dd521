#!/usr/bin/python3
"""Figures of `lorascope rank-accuracy` runs (lora-rank-accuracy-gradient-flow.md).

Called by plot_runs.py when the runs come from rank-accuracy (index.json "command"). Writes:
  ra_<run>.png         trajectory: simulated vs closed form (a(t) or per-mode y_i x_i), the gap
                       between them, loss of LoRA and of the full-rank U, relative error R(t)
                       with its eq. (33) limit
  ra_loss.png          loss vs t of every trajectory run (log y), Eckart-Young level dashed
  ra_gap.png           distance to the exact flow (closed_gap) vs t: Algorithm 1's O(alpha)
  ra_mc.png            Monte Carlo: mean R^2 per rank vs eq. (34), mean R vs the bound (35)
  figures.json         the list of figures written
"""
import json
import math
import re
import sys
from pathlib import Path

import run_files
from run_files import NAN, InputError, load_metrics, num, read_json, warn

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

DPI = 120


def is_rank_accuracy(paths):
    """True when every path is a rank-accuracy sweep (index.json) or run (config with solver)."""
    for p in map(Path, paths):
        try:
            if (p / "index.json").is_file():
                if read_json(p / "index.json", "sweep index").get("command") != "rank-accuracy":
                    return False
            elif not isinstance(read_json(p / "config.json", "run config").get("solver"), dict):
                return False
        except InputError:
            return False
    return True


def load(paths):
    runs = []
    for p in map(Path, paths):
        if (p / "index.json").is_file():
            entries = read_json(p / "index.json", "sweep index").get("runs") or []
            items = [(p / str(e.get("dir") or e.get("name")), e.get("name")) for e in entries if isinstance(e, dict)]
        else:
            items = [(p, None)]
        for d, name in items:
            cfg = read_json(d / "config.json", "the run's resolved config")
            summary = read_json(d / "summary.json", "run summary") if (d / "summary.json").is_file() else {}
            recs = load_metrics(d / "metrics.jsonl", required=False)
            name = name or cfg.get("name") or d.name
            runs.append({"name": name, "slug": re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)),
                         "cfg": cfg, "summary": summary, "recs": recs})
    return runs


def col(recs, key):
    return [num(r.get(key)) for r in recs]


def pos(vals):
    return [v if math.isfinite(v) and v > 0 else NAN for v in vals]


def save(fig, out, fname, written):
    fig.tight_layout()
    fig.savefig(out / fname, dpi=DPI)
    plt.close(fig)
    print(out / fname)
    written.append(fname)


def fig_trajectory(run, out, written):
    recs, s = run["recs"], run["summary"]
    t = col(recs, "t")
    fig, axes = plt.subplots(1, 4, figsize=(18, 4.2))
    a = axes[0]
    if "a" in recs[0]:
        a.plot(t, pos([abs(v) for v in col(recs, "a")]), lw=2, label="|a(t)| simulated")
        a.plot(t, pos([abs(v) for v in col(recs, "a_closed")]), "k--", lw=1, label="|a(t)| eq. (313)")
        a.set_yscale("log")
        a.set(title="trace residual a(t) = Tr(W0 - YX)")
    elif "modes" in recs[0]:
        k = max(len(r.get("modes") or []) for r in recs)
        for i in range(k):
            a.plot(t, [num((r.get("modes") or [NAN] * k)[i]) for r in recs], color=f"C{i}", lw=2,
                   label=f"y{i + 1} x{i + 1}")
            if "modes_closed" in recs[0]:
                a.plot(t, [num(r["modes_closed"][i]) for r in recs], "k--", lw=0.9)
        for v in (s.get("w0_sv") or [])[:k]:
            a.axhline(v, color="0.7", ls=":", lw=0.8)
        a.set(title="modes u_i^T BA v_i (dashed: closed form eq. 50)")
    a.set_xlabel("t")
    a.legend(fontsize="x-small")
    g = axes[1]
    for key, label in (("closed_gap", "LoRA vs closed form"), ("full_gap", "U vs eq. (20)")):
        ys = pos(col(recs, key))
        if any(math.isfinite(v) for v in ys):
            g.plot(t, ys, label=label)
    g.set_yscale("log")
    g.set(xlabel="t", title="max |simulated - closed form|")
    g.legend(fontsize="x-small")
    ls = axes[2]
    ls.plot(t, pos(col(recs, "loss")), label=f"LoRA r={run['cfg'].get('task', {}).get('rank')}")
    ls.plot(t, pos(col(recs, "loss_full")), label="full-rank U")
    if isinstance(s.get("eckart_young_loss"), (int, float)):
        ls.axhline(s["eckart_young_loss"], color="k", ls="--", lw=0.9, label="Eckart-Young")
    ls.set_yscale("log")
    ls.set(xlabel="t", title="loss")
    ls.legend(fontsize="x-small")
    r = axes[3]
    r.plot(t, col(recs, "rel_error"), label="R(t) = ||BA - U|| / ||U||")
    if isinstance(s.get("rel_error_eq33"), (int, float)):
        r.axhline(s["rel_error_eq33"], color="k", ls="--", lw=0.9, label="eq. (33)")
    r.set(xlabel="t", title="relative error to the full-rank flow")
    r.legend(fontsize="x-small")
    for ax in axes:
        ax.grid(alpha=0.3, which="both")
    fig.suptitle(f"{run['name']}: {s.get('loss', '')} {s.get('method', '')} [{s.get('status', '?')}]",
                 fontsize="medium")
    save(fig, out, f"ra_{run['slug']}.png", written)


def fig_compare(runs, key, title, fname, out, written):
    fig, ax = plt.subplots(figsize=(8, 5))
    for k, run in enumerate(runs):
        ys = pos(col(run["recs"], key))
        if any(math.isfinite(v) for v in ys):
            ax.plot(col(run["recs"], "t"), ys, color=f"C{k % 10}", ls=["-", "--", "-.", ":"][(k // 10) % 4],
                    label=run["name"])
        ey = run["summary"].get("eckart_young_loss")
        if key == "loss" and isinstance(ey, (int, float)) and ey > 0:
            ax.axhline(ey, color=f"C{k % 10}", ls=":", lw=0.8)
    ax.set_yscale("log")
    ax.set(xlabel="t", title=title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="x-small")
    save(fig, out, fname, written)


def fig_mc(runs, out, written):
    pts = sorted((int(r["summary"].get("rank", 0)), r) for r in runs)
    ranks = [p[0] for p in pts]
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5))
    a.errorbar(ranks, [num(r["summary"].get("mean_R2")) for _, r in pts],
               yerr=[2 * num(r["summary"].get("sem_R2")) for _, r in pts], fmt="o", label="mean R² (±2 s.e.)")
    a.plot(ranks, [num(r["summary"].get("expected_R2_eq34")) for _, r in pts], "k--", label="eq. (34)")
    a.set(xlabel="rank r", ylabel="R²", title="E[R²] = (n² + n − 2) / (n r + 2)")
    b.plot(ranks, [num(r["summary"].get("mean_R")) for _, r in pts], "o", label="mean R")
    b.plot(ranks, [num(r["summary"].get("jensen_bound_eq35")) for _, r in pts], "k--", label="bound (35)")
    b.set(xlabel="rank r", ylabel="R", title="E[R] ≤ sqrt(E[R²])")
    for ax in (a, b):
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    save(fig, out, "ra_mc.png", written)


def main(args):
    """args: the parsed plot_runs.py arguments (out, dirs)."""
    run_files.PROG = "plot_rank_accuracy.py"
    try:
        runs = load(args.dirs)
    except InputError as e:
        print(e, file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    traj = [r for r in runs if r["recs"] and "sample" not in r["recs"][0]]
    mc = [r for r in runs if r["recs"] and "sample" in r["recs"][0]]
    for r in runs:
        if not r["recs"]:
            warn(f"{r['name']}: no metrics; skipped")
    for r in traj:
        fig_trajectory(r, out, written)
    if traj:
        fig_compare(traj, "loss", "loss vs t (dotted: Eckart-Young)", "ra_loss.png", out, written)
        fig_compare(traj, "closed_gap", "distance to the exact flow (closed form)", "ra_gap.png", out, written)
    if mc:
        fig_mc(mc, out, written)
    (out / "figures.json").write_text(json.dumps({"figures": written, "runs": [
        {"name": r["name"], "status": r["summary"].get("status")} for r in runs]}, indent=2) + "\n")
    return 0
