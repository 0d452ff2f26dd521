#!/usr/bin/python3
"""Report for `lorascope compare`: one LoRA fine-tune under several optimizers (paper App. E.2).

Usage: /usr/bin/python3 scripts/report.py OUT_DIR

OUT_DIR holds index.json and one run dir per optimizer (config.json, metrics.jsonl and,
if the run finished, summary.json). Writes into OUT_DIR:
  curves.png     train loss (log y) and eval accuracy/perplexity vs step, all runs
  sv_<run>.png   per run, one panel per adapter: all r singular values of AB vs step (Fig. 12-15)
  erank.png      one panel per adapter: effective rank vs step, one line per run (Fig. 16-17)
  lr_sweep.png   with learning-rate sweeps (OUT_DIR/sweep.json): validation loss (and accuracy)
                 vs lr, one line per swept run; the other figures then show each one's best point
  report.md      command, summary table, the figures; the table is also printed to stdout
Exit 2 with "report.py: PATH: what was expected" on bad input.
"""
import json
import math
import re
import shlex
import sys
from pathlib import Path

import run_files
from run_files import NAN, InputError, load_metrics, num, read_json, warn

run_files.PROG = "report.py"

import matplotlib
matplotlib.use("Agg")  # headless: lorascope runs this without a display
import matplotlib.pyplot as plt
from matplotlib.lines import Line2D
from matplotlib.ticker import LogFormatter

DPI = 110



def sub(d, key):
    v = d.get(key) if isinstance(d, dict) else None
    return v if isinstance(v, dict) else {}


def last(vals):
    return next((v for v in reversed(vals) if math.isfinite(v)), NAN)



def load_run(d, entry):
    cfg = read_json(d / "config.json", "the run's resolved config")
    summary = {}
    if (d / "summary.json").exists():
        try:  # a bad summary should not block the figures
            summary = read_json(d / "summary.json", "run summary")
        except InputError as e:
            warn(f"{e}; ignoring it")
    recs = load_metrics(d / "metrics.jsonl", required=False)
    optim, lora = sub(cfg, "optim"), sub(cfg, "lora")
    run = {"name": str(entry.get("name") or cfg.get("name") or d.name), "dir": d, "summary": summary,
           "optim": optim, "overrides": entry.get("overrides"), "loss": [], "eval": [], "adapters": {},
           "status": str(summary.get("status") or "incomplete")}  # no summary.json: killed mid-run
    for r in recs:
        step = num(r["step"])
        if math.isfinite(num(r.get("loss"))):
            run["loss"].append((step, num(r["loss"])))
        if isinstance(r.get("eval"), dict):
            run["eval"].append((step, r["eval"]))
        for name, st in (r.get("adapters") or {}).items() if isinstance(r.get("adapters"), dict) else ():
            if isinstance(st, dict):
                a = run["adapters"].setdefault(name, {"step": [], "sv": [], "erank": []})
                a["step"].append(step)
                a["sv"].append([num(v) for v in st.get("sv")] if isinstance(st.get("sv"), list) else [])
                a["erank"].append(num(st.get("erank")))
    svlen = max((len(s) for a in run["adapters"].values() for s in a["sv"]), default=0)
    r = num(lora.get("r"))
    r = r if math.isfinite(r) and r > 0 else num(summary.get("lora_r"))
    run["r"] = int(r) if math.isfinite(r) and r > 0 else svlen
    run["last"] = {k: last([num(x.get(k)) for x in recs]) for k in ("step", "wall_s", "tokens")}
    run["last"]["loss"] = run["loss"][-1][1] if run["loss"] else NAN
    return run


def collect(out):
    if not out.is_dir():
        raise InputError(out, "expected the output dir of `lorascope compare` (with index.json)")
    index = read_json(out / "index.json", "compare index with a 'runs' list")
    entries = index.get("runs")
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        raise InputError(out / "index.json", "expected 'runs': a non-empty list of {name, dir, overrides, status}")
    runs, used = [], set()
    for e in entries:
        d = out / str(e.get("dir") or e.get("name") or "")
        if not d.is_dir() or d == out:
            raise InputError(d, "run dir listed in index.json does not exist")
        run = load_run(d, e)
        # File names come from run names, so keep them unique and filesystem-safe.
        base = re.sub(r"[^A-Za-z0-9._-]+", "_", run["name"]) or "run"
        slug, k = base, 2
        while slug in used:
            slug, k = f"{base}_{k}", k + 1
        used.add(slug)
        run["slug"] = slug
        runs.append(run)
    return index, runs


def assign_colors(runs):
    # Paper convention: Muon blue, AdamW red; others get the remaining tab10 colours.
    prefs = (("muon", "C0"), ("adam", "C3"), ("hybrid", "C2"), ("specgd", "C2"), ("sgd", "C1"))
    taken = set()
    for r in runs:
        texts = (r["name"].lower(), str(r["optim"].get("name", "")).lower())  # the run name decides first
        want = next((c for t in texts for w, c in prefs if w in t), None)
        if want in taken or want is None:
            want = next((f"C{i}" for i in (4, 5, 6, 8, 9, 7, 1, 2, 0, 3) if f"C{i}" not in taken),
                        f"C{len(taken) % 10}")  # beyond 10 runs colours repeat
        taken.add(want)
        r["color"] = want


def layer_key(name):
    m = re.search(r"(?:^|\.)(?:layers?|h|blocks?)\.(\d+)(?:\.|$)", name) or re.search(r"\.(\d+)\.", name)
    return (0, int(m.group(1)), name) if m else (1, 0, name)


def adapter_order(runs):
    # Sorted by layer index, then name; titles like "L0 q_proj" (unnumbered ones: last two parts).
    names = sorted({n for r in runs for n in r["adapters"]}, key=layer_key)
    titles = [f"L{layer_key(n)[1]} {n.rsplit('.', 1)[-1]}" if layer_key(n)[0] == 0
              else ".".join(n.split(".")[-2:]) for n in names]
    if len(set(titles)) < len(titles):  # e.g. encoder and decoder layers: show more of the path
        titles = [".".join(n.split(".")[-4:]) for n in names]
    return names, titles


def grid(names, titles, ylabel):
    """One panel per adapter, shared axes; returns (fig, the used axes in order)."""
    n = len(names)
    # Columns a multiple of the adapter kinds (q_proj, v_proj, ...) so each row holds whole layers.
    kinds = max(1, len({x.rsplit(".", 1)[-1] for x in names}))
    ncols = min(n, kinds * max(1, round(math.sqrt(n * 1.6) / kinds)))
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(max(7.5, 2.7 * ncols + 0.6), 2.1 * nrows + 1.3),
                             sharex=True, sharey=True, squeeze=False)
    axs = list(axes.flat)
    for i, ax in enumerate(axs):
        if i >= n:
            ax.axis("off")
            continue
        ax.set_title(titles[i], fontsize="small")
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize="x-small")
        if i % ncols == 0:
            ax.set_ylabel(ylabel, fontsize="small")
        if i + ncols >= n:  # lowest panel of its column (the last row may be short)
            ax.tick_params(labelbottom=True)
            ax.set_xlabel("step", fontsize="small")
    return fig, axs[:n]


def save(fig, out, fname, written, legend_rows=0):
    fig.tight_layout(rect=(0, 0.35 * legend_rows / fig.get_size_inches()[1], 1, 1))
    fig.savefig(out / fname, dpi=DPI)
    plt.close(fig)
    written.append(fname)


def optim_label(run):
    """The optimizer and the variant options that change what it does (LoRA+, Riemannian
    preconditioning, Muon on one factor), so that runs differing only in those are told apart."""
    o = run["optim"]
    s = str(o.get("name") or run["summary"].get("optimizer") or "?")
    ratio = num(o.get("lora_plus_ratio", 1.0))
    if math.isfinite(ratio) and ratio != 1.0:
        s += f" + LoRA+ {ratio:g}"
    if o.get("precondition") not in (None, "", "none"):
        s += f" + {o['precondition']}"
    if o.get("muon_on") not in (None, "", "both"):
        s += f" on {o['muon_on']}"
    return s + (f" lr={num(o['lr']):g}" if math.isfinite(num(o.get("lr"))) else "")


def run_label(run):
    lab = optim_label(run)
    return lab if lab.split()[0] == run["name"] else f"{run['name']} ({lab})"


class PlainLog(LogFormatter):
    # Tick labels 60 and 0.3, not 6x10^1 or 3e-01 (LogFormatter still decides which minors get one).
    def _num_to_string(self, x, vmin, vmax):
        return f"{x:g}"


def plain_log(ax):
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(PlainLog(labelOnlyBase=False))
    ax.yaxis.set_minor_formatter(PlainLog(labelOnlyBase=False, minor_thresholds=(2, 0.5)))


def eval_metric(runs):
    for key in ("accuracy", "perplexity", "loss"):
        if any(math.isfinite(num(ev.get(key))) for r in runs for _, ev in r["eval"]) or \
                any(math.isfinite(num(sub(r["summary"], "validation").get(key))) for r in runs):
            return key
    return None


def fig_curves(runs, metric, out, written):
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5))
    drawn = False
    for r in runs:
        xs = [s for s, v in r["loss"] if v > 0]  # log axis: drop non-positive points
        a.plot(xs, [v for s, v in r["loss"] if v > 0], color=r["color"], lw=1.3,
               label=run_label(r) + ("" if r["status"] == "completed" else f" [{r['status']}]"))
        pts = [(s, num(ev.get(metric))) for s, ev in r["eval"]] if metric else []
        pts = [(s, v) for s, v in pts if math.isfinite(v)]
        if pts:
            drawn = True
            b.plot([s for s, _ in pts], [v for _, v in pts], color=r["color"], lw=1.3, label=r["name"],
                   marker="o" if len(pts) <= 60 else None, ms=3)
    a.set(xlabel="step", ylabel="train loss", title="train loss (log y)")
    if any(v > 0 for r in runs for _, v in r["loss"]):
        plain_log(a)
        a.legend(fontsize="small")
    base = {round(num(r["summary"].get("majority_baseline")), 6) for r in runs}
    base = sorted(v for v in base if math.isfinite(v))
    if metric == "accuracy":
        for v in base:
            b.axhline(v, color="0.4", ls="--", lw=1.0, label=f"majority baseline {v:.3f}")
    if metric == "perplexity" and drawn:
        plain_log(b)
    b.set(xlabel="step", ylabel=f"eval {metric or ''}", title=f"validation {metric or 'metric'} during training")
    if b.lines:
        b.legend(fontsize="small")
    if not drawn:
        b.text(0.5, 0.5, "no eval records in metrics.jsonl", ha="center", transform=b.transAxes)
    for ax in (a, b):
        ax.grid(alpha=0.3, which="both")
    save(fig, out, "curves.png", written)


def fig_sv(run, out, written):
    names, titles = adapter_order([run])
    fig, axs = grid(names, titles, "σ_i(ΔW = s·BA)")
    k = max(len(s) for a in run["adapters"].values() for s in a["sv"])
    cols = [plt.get_cmap("tab10")(i) if k <= 10 else plt.get_cmap("viridis")(i / (k - 1)) for i in range(k)]
    top = max((v for a in run["adapters"].values() for s in a["sv"] for v in s if math.isfinite(v)), default=0)
    for ax, name in zip(axs, names):
        a = run["adapters"][name]
        for i in range(k):
            ax.plot(a["step"], [s[i] if i < len(s) else NAN for s in a["sv"]], color=cols[i], lw=1.1)
    axs[0].set_ylim(0, top * 1.05 if top > 0 else 1)  # sharey: same limits in every panel
    if k <= 16:
        fig.legend(handles=[Line2D([], [], color=cols[i], lw=1.5, label=f"σ_{i + 1}") for i in range(k)],
                   loc="lower center", ncol=min(k, 8), fontsize="small")
    fig.suptitle(f"{run['name']}: singular values of every LoRA adapter\n({optim_label(run)}, r={run['r']}, "
                 f"{run['status']}; same y-limits in all panels)", fontsize="medium")
    save(fig, out, f"sv_{run['slug']}.png", written, legend_rows=math.ceil(k / 8) if k <= 16 else 0)


def fig_erank(runs, out, written):
    names, titles = adapter_order(runs)
    fig, axs = grid(names, titles, "effective rank")
    r = max(x["r"] for x in runs)
    for ax, name in zip(axs, names):
        ax.axhline(r, color="k", ls=":", lw=1.1, zorder=5)  # above Muon's line at ~r
        for run in runs:
            a = run["adapters"].get(name)
            if a:
                ax.plot(a["step"], a["erank"], color=run["color"], lw=1.3)
    axs[0].set_ylim(0, r * 1.06 if r > 0 else 1)
    handles = [Line2D([], [], color=x["color"], lw=1.5, label=run_label(x))
               for x in runs if x["adapters"]]
    handles.append(Line2D([], [], color="k", ls=":", lw=1.1, label=f"LoRA rank r={r}"))
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 3), fontsize="small")
    fig.suptitle("effective rank (Roy & Vetterli) of every LoRA adapter", fontsize="medium")
    save(fig, out, "erank.png", written, legend_rows=math.ceil(len(handles) / 3))


def cell(v, spec):
    return format(v, spec) if isinstance(v, float) and math.isfinite(v) else "–"


def table(runs, metric):
    cls = metric == "accuracy" or any("majority_baseline" in r["summary"] for r in runs)
    mk = "accuracy" if cls else ("perplexity" if metric in ("perplexity", None) else metric)
    fm = ".4f" if mk in ("accuracy", "loss") else ".3f"
    head = ["run", "optimizer", "steps", "final train loss", f"val {mk}", f"test {mk}"]
    head += ["majority baseline"] if cls else []
    head += ["mean erank / r", "wall s", "tokens/s", "status"]
    rows, partial = [], False
    for r in runs:
        s, lst = r["summary"], r["last"]
        ends = [last(a["erank"]) for a in r["adapters"].values()]  # last finite erank per adapter
        ends = [v for v in ends if math.isfinite(v)]
        alts = {"steps": lst["step"], "final_train_loss": lst["loss"], "wall_seconds": lst["wall_s"],
                "tokens_per_second": lst["tokens"] / lst["wall_s"] if lst["wall_s"] > 0 else NAN,
                "mean_erank": sum(ends) / len(ends) if ends else NAN}

        def pick(key, spec):
            # summary.json's value (null -> "–"); without one, the last logged value, marked *
            if key in s or not math.isfinite(alts[key]):
                return cell(num(s.get(key)), spec)
            nonlocal partial
            partial = True
            return cell(alts[key], spec) + "*"
        row = [r["name"], optim_label(r), pick("steps", ".0f"), pick("final_train_loss", ".4f"),
               cell(num(sub(s, "validation").get(mk)), fm), cell(num(sub(s, "test").get(mk)), fm)]
        row += [cell(num(s.get("majority_baseline")), ".4f")] if cls else []
        row += [f"{pick('mean_erank', '.2f')} / {r['r']}" if r["adapters"] or "mean_erank" in s else "–",
                pick("wall_seconds", ".1f"), pick("tokens_per_second", ".0f"), r["status"]]
        rows.append([str(c).replace("|", "\\|") for c in row])
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines), partial


def load_sweep(out, runs):
    """OUT/sweep.json (written by `lorascope compare` for runs with sweep.lr), or None."""
    path = out / "sweep.json"
    if not path.exists():
        return None
    sweep = read_json(path, "learning-rate sweep summary with 'metric' and 'groups'")
    groups = sweep.get("groups")
    if sweep.get("metric") not in ("accuracy", "loss") or not isinstance(groups, list) or \
            not all(isinstance(g, dict) and isinstance(g.get("points"), list) for g in groups):
        raise InputError(path, "expected 'metric' (accuracy | loss) and 'groups': [{name, points, best}]")
    by_name = {r["name"]: r for r in runs}
    for g in groups:
        for p in g["points"]:
            if not isinstance(p, dict) or p.get("run") not in by_name:
                raise InputError(path, f"{g.get('name')}: point {p!r} names no run of index.json")
    return sweep


def fig_lr_sweep(sweep, runs, out, written):
    by_name = {r["name"]: r for r in runs}
    panels = ["loss"] + (["accuracy"] if sweep["metric"] == "accuracy" else [])
    fig, axs = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.5), squeeze=False)
    for ax, key in zip(axs[0], panels):
        for g in sweep["groups"]:
            pts = sorted((num(p.get("lr")), num(sub(p, "validation").get(key))) for p in g["points"]
                         if p.get("status") == "completed")
            pts = [(x, y) for x, y in pts if math.isfinite(x) and math.isfinite(y)]
            color = by_name[g["points"][0]["run"]]["color"] if g["points"] else None
            if pts:
                ax.plot([x for x, _ in pts], [y for _, y in pts], color=color, marker="o", lw=1.3,
                        label=str(g.get("name")))
            failed = [num(p.get("lr")) for p in g["points"] if p.get("status") != "completed"]
            for x in failed:  # diverged or missing points: a cross on the axis
                ax.plot([x], [0], marker="x", color=color, ms=8, clip_on=False, transform=ax.get_xaxis_transform())
            best = g.get("best")
            if isinstance(best, dict) and math.isfinite(num(sub(best, "validation").get(key))):
                ax.plot([num(best.get("lr"))], [num(sub(best, "validation").get(key))], marker="*", ms=14,
                        color=color, zorder=5)
        ax.set_xscale("log")
        ax.set(xlabel="learning rate (optim.lr)", ylabel=f"validation {key}",
               title=f"validation {key} vs learning rate")
        ax.grid(alpha=0.3, which="both")
        if ax.lines:
            ax.legend(fontsize="small")
    fig.suptitle(f"learning-rate sweeps (star: each run's best by validation {sweep['metric']}; "
                 "x: diverged or unfinished)", fontsize="medium")
    save(fig, out, "lr_sweep.png", written)


def sweep_table(sweep, runs):
    by_name = {r["name"]: r for r in runs}
    mk = sweep["metric"]
    fm = ".4f"
    head = ["run", "optimizer", "best lr", f"val {mk} (best)", f"test {mk}", "points completed", "best point"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for g in sweep["groups"]:
        best = g.get("best") if isinstance(g.get("best"), dict) else None
        done = sum(p.get("status") == "completed" for p in g["points"])
        run = by_name.get(best["run"]) if best else None
        opt = str(run["optim"].get("name", "?")) if run else "–"
        row = [str(g.get("name")), opt, cell(num(best.get("lr")), "g") if best else "–",
               cell(num(sub(best, "validation").get(mk)), fm) if best else "–",
               cell(num(sub(run["summary"], "test").get(mk)), fm) if run else "–",
               f"{done} / {len(g['points'])}", best["run"] if best else "none completed"]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |")
    return "\n".join(lines)


def erank_table(runs):
    """Each adapter's last logged effective rank, one column per run, plus min / mean / max."""
    names, titles = adapter_order(runs)
    with_sv = [r for r in runs if r["adapters"]]
    head = ["adapter"] + [f"{r['name']} (r={r['r']})" for r in with_sv]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    ends = {r["name"]: [last(r["adapters"][n]["erank"]) if n in r["adapters"] else NAN for n in names]
            for r in with_sv}
    for i, t in enumerate(titles):
        lines.append("| " + " | ".join([t] + [cell(ends[r["name"]][i], ".2f") for r in with_sv]) + " |")
    for label, f in (("min", min), ("mean", lambda v: sum(v) / len(v)), ("max", max)):
        vals = [[v for v in ends[r["name"]] if math.isfinite(v)] for r in with_sv]
        lines.append("| " + " | ".join([f"**{label}**"] + [cell(f(v), ".2f") if v else "–" for v in vals]) + " |")
    return "\n".join(lines)


def main(argv):
    if len(argv) != 1 or argv[0].startswith("-"):
        print("usage: /usr/bin/python3 scripts/report.py OUT_DIR", file=sys.stderr)
        return 2
    out = Path(argv[0])
    try:
        index, runs = collect(out)
    except InputError as e:
        print(e, file=sys.stderr)
        return 2
    try:
        sweep = load_sweep(out, runs)
    except InputError as e:
        print(e, file=sys.stderr)
        return 2
    # With sweeps, the curves and spectral figures show each swept run's best point (and every
    # run without a sweep); the full table still lists every point.
    shown = runs
    if sweep:
        points = {p["run"] for g in sweep["groups"] for p in g["points"]}
        best = {g["best"]["run"] for g in sweep["groups"] if isinstance(g.get("best"), dict)}
        shown = [r for r in runs if r["name"] not in points or r["name"] in best]
    assign_colors(shown)
    if sweep:  # each swept run keeps its best point's colour in the lr figure
        colors = {p["run"]: next((s["color"] for s in shown if s["name"] in {q["run"] for q in g["points"]}), None)
                  for g in sweep["groups"] for p in g["points"]}
        for r in runs:
            r.setdefault("color", colors.get(r["name"]) or "0.5")
    metric = eval_metric(runs)
    written = []
    fig_curves(shown, metric, out, written)
    if sweep:
        fig_lr_sweep(sweep, runs, out, written)
    with_sv = [r for r in shown if r["adapters"]]
    for r in shown:
        if r["adapters"]:
            fig_sv(r, out, written)
        else:
            warn(f"{r['dir']}: no adapter spectra in metrics.jsonl; no sv_{r['slug']}.png")
    if with_sv:
        fig_erank(with_sv, out, written)
    tbl, partial = table(runs, metric)
    sets = index.get("sets") if isinstance(index.get("sets"), list) else []
    cmd = f"lorascope {index.get('command', 'compare')} --config {index.get('config', '?')}" + \
        "".join(f" --set {shlex.quote(str(s))}" for s in sets) + f" --out {shlex.quote(str(out))}"
    md = [f"# lorascope {index.get('command', 'compare')} report: {out.resolve().name}", "",
          f"Command: `{cmd}`", "", "Runs (overrides on top of the config):", ""]
    md += [f"- **{r['name']}** (`{r['dir'].name}/`): `{json.dumps(r['overrides'])}`" for r in runs]
    if sweep:
        better = "higher" if sweep["metric"] == "accuracy" else "lower"
        md += ["", "## Best of each learning-rate sweep", "",
               f"Each swept run's best point by validation {sweep['metric']} ({better} is better; "
               + ("accuracy, as the task is classification" if sweep["metric"] == "accuracy"
                  else "loss, as the task reports no accuracy") + "). The figures below show these points.",
               "", sweep_table(sweep, runs), "", "![lr sweep](lr_sweep.png)", "",
               "Validation loss" + (" and accuracy" if sweep["metric"] == "accuracy" else "")
               + " vs learning rate, one line per swept run: is each optimizer's best inside the range "
               "(not at an end of it)?", ""]
    md += ["", "## Summary", "", tbl, ""]
    if any(r["adapters"] for r in runs):
        md += ["## Effective rank of every adapter at the end", "",
               "exp(entropy of sigma_i / sum sigma) of delta W = s B A at the last logged step "
               "(r = all singular values equal, 1 = one direction).", "", erank_table(runs), ""]
    if partial:
        md += ["\\* not in summary.json (run killed, or it did not complete): the last logged value "
               "(for mean erank, the mean over adapters of each one's last finite effective rank).", ""]
    md += ["## Figures", "", "![curves](curves.png)", "",
           f"Train loss (log y) and validation {metric or 'metric'} vs step"
           + (" (dashed: majority-class baseline)" if metric == "accuracy" else "")
           + ": do all optimizers reach a similar loss, and which one gets there first?", ""]
    for r in with_sv:
        md += [f"![sv {r['name']}](sv_{r['slug']}.png)", "",
               f"{run_label(r)}: every adapter's {r['r']} singular values vs step, same y-limits. "
               + ("Orthogonalized updates: expect all σ_i to grow together, near-uniformly, in every adapter "
                  "(paper Fig. 12, 14)."
                  if any(w in optim_label(r).lower() for w in ("muon", "specgd")) else "Compare with Muon's figure: look for adapters where a "
                  "few σ_i dominate and the rest lag near 0 (paper Fig. 13, 15)."), ""]
    for r in shown:
        if not r["adapters"]:
            md += [f"{r['name']}: no adapter spectra were logged, so it has no singular-value figure.", ""]
    if with_sv:
        md += ["![erank](erank.png)", "",
               "Effective rank of every adapter, one line per run (dotted: r). Muon's should stay close to r; "
               "look for adapters where another optimizer's drops well below it or drifts.", ""]
    (out / "report.md").write_text("\n".join(md))
    print(tbl)
    print(f"report.py: wrote {', '.join(written + ['report.md'])} in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
