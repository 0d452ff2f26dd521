#!/usr/bin/python3
"""Plot lorascope matrix-factorization runs (figures of the Muon/LoRA uniform-growth paper).

Usage: /usr/bin/python3 scripts/plot_runs.py --out FIGDIR [--x step|t] RUN_OR_SWEEP_DIR...

A sweep dir holds index.json; a run dir holds config.json, metrics.jsonl and
(if it finished) summary.json. Writes into FIGDIR:
  sv_<run>.png          sigma_i(W) with targets and d_i, and sigma_i^(1/L)
  compare_sv.png        one panel per run, sigma_i vs x, shared y     (paper Fig. 2, 7-10)
  compare_root_sv.png   same grid for sigma_i^(1/L)                   (Fig. 4 right, 11)
  compare_loss.png      loss of all runs, log y                       (Fig. 3)
  compare_alignment.png off_diag and x_zperp, log y                   (Fig. 4 diagnostic)
  figures.json          the list of figures written
Exit 2 with "plot_runs.py: PATH: what was expected" on bad input.
"""
import argparse
import json
import math
import re
import sys
from pathlib import Path

import run_files
from run_files import NAN, InputError, load_metrics, num, read_json, warn

run_files.PROG = "plot_runs.py"

import matplotlib
matplotlib.use("Agg")  # headless: lorascope runs this without a display
import matplotlib.pyplot as plt
from matplotlib.lines import Line2D

DPI = 120



def as_int(x, default):
    return int(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) else default


def columns(rows):
    # Rows of differing length (sv lists can vary) -> columns padded with NaN.
    k = max((len(r) for r in rows if isinstance(r, list)), default=0)
    return [[num(r[i]) if isinstance(r, list) and i < len(r) else NAN for r in rows] for i in range(k)]



def load_run(d, name=None):
    cfg = read_json(d / "config.json", "the run's resolved config")
    summary = {}
    if (d / "summary.json").exists():
        try:  # summary is optional, so a bad one should not block the plots
            summary = read_json(d / "summary.json", "run summary")
        except InputError as e:
            warn(f"{e}; ignoring it")
    recs = load_metrics(d / "metrics.jsonl")
    task = cfg.get("task") if isinstance(cfg.get("task"), dict) else {}
    optim = cfg.get("optim") if isinstance(cfg.get("optim"), dict) else {}
    targets = task.get("target_sv") or summary.get("target_sv") or []
    targets = targets if isinstance(targets, list) else []
    sv = columns([r.get("sv") for r in recs])
    run = {
        "name": name or cfg.get("name") or summary.get("name") or d.name,
        "dir": str(d),
        "optim": optim,
        "status": summary.get("status", "incomplete (no summary.json)"),
        "targets": [num(v) for v in targets],
        "rank": as_int(task.get("rank") or summary.get("rank"), len(sv)),
        "depth": max(1, as_int(task.get("depth") or summary.get("depth"), 2)),
        "step": [num(r["step"]) for r in recs],
        "t": [num(r.get("t")) for r in recs],
        "loss": [num(r.get("loss")) for r in recs],
        "off_diag": [num(r.get("off_diag")) for r in recs],
        "x_zperp": [num(r.get("x_zperp")) for r in recs],
        "sv": sv,
        "d": columns([r.get("d") for r in recs]),
    }
    return run


def collect_runs(paths):
    runs, seen = [], set()
    for p in map(Path, paths):
        if not p.is_dir():
            raise InputError(p, "expected a run dir (config.json) or a sweep dir (index.json)")
        if (p / "index.json").is_file():
            index = read_json(p / "index.json", "sweep index with a 'runs' list")
            entries = index.get("runs")
            if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
                raise InputError(p / "index.json", "expected 'runs': a list of {name, dir, overrides}")
            items = [(p / str(e.get("dir") or e.get("name") or ""), e.get("name")) for e in entries]
        elif (p / "config.json").is_file() or (p / "metrics.jsonl").is_file():
            items = [(p, None)]
        else:
            raise InputError(p, "expected a run dir (config.json) or a sweep dir (index.json)")
        for d, name in items:
            if not d.is_dir():
                raise InputError(d, "run dir listed in index.json does not exist")
            if d.resolve() in seen:  # a run given both directly and via its sweep
                continue
            seen.add(d.resolve())
            runs.append(load_run(d, name))
    # File names come from run names, so keep them unique and filesystem-safe.
    used = set()
    for r in runs:
        base = re.sub(r"[^A-Za-z0-9._-]+", "_", str(r["name"])) or "run"
        slug, k = base, 2
        while slug in used:
            slug, k = f"{base}_{k}", k + 1
        used.add(slug)
        r["slug"] = slug
    return runs


def fmt(v):
    return f"{v:g}" if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)


def settings(run):
    o = run["optim"]
    parts = [str(o.get("name", "?")), f"lr={fmt(o.get('lr', '?'))}", f"μ={fmt(o.get('momentum', 0))}"]
    if str(o.get("name", "")).lower() not in ("sgd", "gd", "adam", "adamw"):
        # orthogonalizer/beta only mean something for the spectral optimizers
        parts += [f"orth={o.get('orthogonalizer', '?')}", f"β={fmt(o.get('beta', 0))}"]
    parts += [f"r={run['rank']}", f"L={run['depth']}"]
    if run["status"] != "completed":
        parts.append(f"[{run['status']}]")
    return " ".join(parts)


def root(v, L):
    # Sign-preserving L-th root: d_i can be slightly negative early on.
    return math.copysign(abs(v) ** (1.0 / L), v) if math.isfinite(v) else NAN


def root_label(L):
    return "sqrt σ_i" if L == 2 else ("σ_i" if L == 1 else f"σ_i^(1/{L})")


def y_top(run, L):
    # Cap at 2x the largest target so one diverged run cannot flatten a shared axis.
    vals = [v for col in run["sv"] for v in col if math.isfinite(v)]
    tmax = max((v for v in run["targets"] if math.isfinite(v)), default=0.0)
    smax = max(vals, default=0.0)
    top = max(tmax, min(smax, 2 * tmax)) if tmax > 0 else smax
    return root(top, L) * 1.08 if top > 0 else 1.0


def plot_sv(ax, run, xs, L, show_legend=False):
    """sigma_i (solid), d_i (dotted, same colour), targets (grey dashed), in L-th-root coordinates."""
    for j, tv in enumerate(run["targets"]):
        if math.isfinite(tv):
            top = j < run["rank"]  # targets beyond the LoRA rank cannot be reached
            ax.axhline(root(tv, L), color="0.55" if top else "0.8", ls="--", lw=0.9 if top else 0.7, zorder=0)
    for i, col in enumerate(run["sv"]):
        ax.plot(xs, [root(v, L) for v in col], color=f"C{i % 10}", lw=1.6, label=f"σ_{i + 1}")
    for i, col in enumerate(run["d"][:max(len(run["sv"]), run["rank"])]):
        ax.plot(xs, [root(v, L) for v in col], color=f"C{i % 10}", lw=1.1, ls=":")
    ax.grid(alpha=0.3)
    if show_legend:
        ax.legend(handles=legend_handles(len(run["sv"])), fontsize="x-small", loc="best")


def legend_handles(k):
    hs = [Line2D([], [], color=f"C{i % 10}", lw=1.6, label=f"σ_{i + 1}") for i in range(k)]
    hs.append(Line2D([], [], color="k", ls=":", lw=1.1, label="d_i (same colour)"))
    hs.append(Line2D([], [], color="0.55", ls="--", lw=0.9, label="target σ*_i"))
    return hs


def save(fig, out, fname, written):
    path = out / fname
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    print(path)
    written.append(fname)


def fig_single(run, xkey, xlabel, out, written):
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2))
    xs = run[xkey]
    plot_sv(a, run, xs, 1, show_legend=True)
    a.set_ylim(-0.02 * y_top(run, 1), y_top(run, 1))
    a.set(xlabel=xlabel, ylabel="σ_i(W)", title="singular values of W")
    L = run["depth"]
    plot_sv(b, run, xs, L)
    b.set_ylim(-0.02 * y_top(run, L), y_top(run, L))
    b.set(xlabel=xlabel, ylabel=root_label(L), title=f"{root_label(L)} (straight & parallel under SpecGD)")
    fig.suptitle(f"{run['name']}: {settings(run)}", fontsize="medium")
    fig.tight_layout()
    save(fig, out, f"sv_{run['slug']}.png", written)


def fig_grid(runs, xkey, xlabel, out, written, rooted):
    n = len(runs)
    ncols = min(n, 4)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.3 * ncols, 3.5 * nrows + 0.5),
                             sharey=True, squeeze=False)
    Ls = [r["depth"] if rooted else 1 for r in runs]
    top = max(y_top(r, L) for r, L in zip(runs, Ls))
    for k, ax in enumerate(axes.flat):
        if k >= n:
            ax.axis("off")
            continue
        r = runs[k]
        plot_sv(ax, r, r[xkey], Ls[k])
        ax.set_title(f"{r['name']}\n{settings(r)}", fontsize="small")
        ax.set_xlabel(xlabel)
        if k % ncols == 0:
            ax.set_ylabel("L-th root of σ_i (per panel L)" if rooted else "σ_i(W)")
    axes[0][0].set_ylim(-0.02 * top, top)  # sharey: same limits everywhere
    kmax = max(len(r["sv"]) for r in runs)
    fig.legend(handles=legend_handles(kmax), loc="lower center", ncol=kmax + 2, fontsize="small")
    what = "σ_i(W)^(1/L)" if rooted else "σ_i(W)"
    fig.suptitle(f"{what} per run (same y-limits)", fontsize="medium")
    fig.tight_layout(rect=(0, 0.35 / (3.5 * nrows + 0.5), 1, 1))  # room for the legend
    save(fig, out, "compare_root_sv.png" if rooted else "compare_sv.png", written)


def positive(vals):
    # Log axes cannot show 0, negatives or NaN; drop those points (gaps in the line).
    return [v if math.isfinite(v) and v > 0 else NAN for v in vals]


def run_style(k):
    # Beyond 10 runs colours repeat, so vary the dash pattern too.
    return {"color": f"C{k % 10}", "ls": ["-", "--", "-.", ":"][(k // 10) % 4], "lw": 1.4}


def fig_loss(runs, xkey, xlabel, out, written):
    fig, ax = plt.subplots(figsize=(8, 5))
    for k, r in enumerate(runs):
        ax.plot(r[xkey], positive(r["loss"]), label=f"{r['name']} ({settings(r)})", **run_style(k))
    ax.set_yscale("log")
    ax.set(xlabel=xlabel, ylabel="loss", title="loss vs " + xlabel)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="x-small")
    fig.tight_layout()
    save(fig, out, "compare_loss.png", written)


def fig_alignment(runs, xkey, xlabel, out, written):
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    for ax, key, title in zip(axes, ("off_diag", "x_zperp"),
                              ("||Off(G)||_F (alignment of A, B with target basis)", "x_zperp")):
        drawn = 0
        for k, r in enumerate(runs):
            ys = positive(r[key])
            if any(math.isfinite(v) for v in ys):
                ax.plot(r[xkey], ys, label=r["name"], **run_style(k))
                drawn += 1
        if drawn:
            ax.set_yscale("log")
            ax.legend(fontsize="x-small")
        else:
            ax.text(0.5, 0.5, f"no positive '{key}' values", ha="center", transform=ax.transAxes)
        ax.set(xlabel=xlabel, title=title)
        ax.grid(alpha=0.3, which="both")
    fig.suptitle("alignment diagnostics (log y; non-positive values skipped)", fontsize="medium")
    fig.tight_layout()
    save(fig, out, "compare_alignment.png", written)


def is_eos_sweep(paths):
    try:
        return all(json.loads((Path(p) / "index.json").read_text()).get("command") == "eos"
                   for p in paths)
    except (OSError, ValueError, AttributeError):
        return False


def main(argv=None):
    ap = argparse.ArgumentParser(prog="plot_runs.py", description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="directory for the PNGs and figures.json")
    ap.add_argument("--x", choices=("step", "t"), default="step",
                    help="x axis: step (default) or t = cumulative learning rate (flow time)")
    ap.add_argument("dirs", nargs="+", metavar="RUN_OR_SWEEP_DIR")
    args = ap.parse_args(argv)
    import plot_rank_accuracy  # `lorascope rank-accuracy` runs have their own figures
    if plot_rank_accuracy.is_rank_accuracy(args.dirs):
        return plot_rank_accuracy.main(args)
    if is_eos_sweep(args.dirs):  # lorascope eos sweeps have their own figures
        import plot_eos
        return plot_eos.main(["--out", args.out] + args.dirs)
    import plot_pretrained_mf  # pretrained-mf sweeps have their own figures
    if plot_pretrained_mf.handles(args.dirs):
        return plot_pretrained_mf.plot(args.dirs, Path(args.out), args.x)
    try:
        runs = collect_runs(args.dirs)
    except InputError as e:
        print(e, file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    xlabel = "step" if args.x == "step" else "t = Σ lr (flow time)"
    written = []
    for r in runs:
        fig_single(r, args.x, xlabel, out, written)
    fig_grid(runs, args.x, xlabel, out, written, rooted=False)
    fig_grid(runs, args.x, xlabel, out, written, rooted=True)
    fig_loss(runs, args.x, xlabel, out, written)
    fig_alignment(runs, args.x, xlabel, out, written)
    index = {"figures": written,
             "runs": [{"name": r["name"], "dir": r["dir"], "status": r["status"],
                       "figure": f"sv_{r['slug']}.png"} for r in runs]}
    (out / "figures.json").write_text(json.dumps(index, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
