#!/usr/bin/env python3
"""TensorBoard event files written by lorascope (trainer/tensorboard_sink.h: through
`lorascope tensorboard RUN`, or by the trainer itself with logging.tensorboard=true) read back
with tensorboard's own EventAccumulator; every scalar and every singular-value histogram is
checked against the metrics.jsonl records it came from.

Streams:
  finetune   a real run: `lorascope pretrain` of a tiny LLaMA on Brown, then `lorascope finetune`
             with LoRA on SpamAssassin (loss, lr, grad_norm, tokens_per_s, eval, per-adapter sv,
             erank, stable_rank, fro)
  training/<run>  the same finetune with logging.tensorboard=true and monitor.geometry_every: the
             event file the trainer wrote during training (not converted afterwards), with the
             online geometry fields (align_left, angles_left, intruders, drift_left, ...; the base
             SVDs cached in float32, monitor.base_svd_dtype); both runs of compare_spam.json
  mf         a real `lorascope mf` run (sv, d, factors, off_diag, ...)
  synthetic  a metrics.jsonl-like stream with the geometry fields the online monitor adds
             (align_left, angles_left, intruders, intruder_sv: null, drift_left, ...)

The tag of each field is the documented mapping (train/<field>, eval/<field>, <field>/<adapter>,
lists: a histogram plus <tag>/<i>); values are float32 in the event file, so the tolerance is
float32 rounding (relative 2^-24), and the set of tags must be exactly those of the records.

    PY=$(bash scripts/reference_env.sh | tail -1)
    $PY tests/interop/check_tensorboard.py --lorascope build/lorascope --work /tmp/tb --data .cache/data
"""
import functools
import json
import math
import os
import random
import shutil
import subprocess
import sys

import numpy as np
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import interop_common as ic

F32_TOL = 2.0 ** -24
failed = 0


def report(status, name, text):
    global failed
    failed += status == "FAIL"
    print(f"{status} {name}: {text}", flush=True)


def run(cmd, timeout=600):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} ... exited {p.returncode}: {p.stderr.strip()[-600:]}")
    return p.stdout


def is_num(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def expected(record):
    """(scalars {tag: value}, histograms {tag: [values]}) of one record, by the documented mapping."""
    scalars, histos = {}, {}

    def flat(tag, v):
        if is_num(v):
            scalars[tag] = float(v)
        elif isinstance(v, list) and v and all(is_num(x) or x is None for x in v):
            fin = [float(x) for x in v if is_num(x) and math.isfinite(x)]
            if fin:
                histos[tag] = fin
            width = len(str(len(v)))
            for i, x in enumerate(v):
                if is_num(x):
                    scalars[f"{tag}/{str(i + 1).zfill(width)}"] = float(x)
        elif isinstance(v, list):
            width = len(str(len(v)))
            for i, x in enumerate(v):
                flat(f"{tag}/{str(i + 1).zfill(width)}", x)
        elif isinstance(v, dict):
            for k, x in v.items():
                flat(f"{tag}/{k}", x)

    for key, v in record.items():
        if key in ("step", "wall_s"):
            continue
        if key == "adapters" and isinstance(v, dict):
            for name, stats in v.items():
                for field, x in (stats.items() if isinstance(stats, dict) else []):
                    flat(f"{field}/{name}", x)
        elif key == "eval" and isinstance(v, dict):
            flat("eval", v)
        elif is_num(v):
            flat(f"train/{key}", v)
        else:
            flat(key, v)
    return scalars, histos


def check_run(name, run_dir, exe, convert=True):
    """convert: write the event file with `lorascope tensorboard` (replacing any); else check the
    one event file already there (written during training)."""
    records = []
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        for line in f:
            if line.strip():
                records.append(json.loads(line))
    events = [fn for fn in os.listdir(run_dir) if "tfevents" in fn]
    if convert:
        for fn in events:
            os.remove(os.path.join(run_dir, fn))
        run([exe, "--threads", "2", "tensorboard", run_dir])
    elif len(events) != 1:
        raise RuntimeError(f"{run_dir}: expected the one event file the trainer writes, found {events}")
    ea = EventAccumulator(run_dir, size_guidance={"scalars": 0, "histograms": 0, "tensors": 0})
    ea.Reload()
    tags = ea.Tags()
    got_scalars = {t: {e.step: e.value for e in ea.Scalars(t)} for t in tags["scalars"]}
    got_histos = {t: {e.step: e.histogram_value for e in ea.Histograms(t)} for t in tags["histograms"]}
    want_scalars, want_histos = {}, {}
    for r in records:
        s, h = expected(r)
        for t, v in s.items():
            want_scalars.setdefault(t, {})[r["step"]] = v
        for t, v in h.items():
            want_histos.setdefault(t, {})[r["step"]] = v
    worst, count, problems = 0.0, 0, []
    if set(got_scalars) != set(want_scalars):
        problems.append(f"scalar tags differ: missing {sorted(set(want_scalars) - set(got_scalars))[:3]}, "
                        f"extra {sorted(set(got_scalars) - set(want_scalars))[:3]}")
    for t, by_step in want_scalars.items():
        got = got_scalars.get(t, {})
        if set(got) != set(by_step):
            problems.append(f"{t}: steps {sorted(got)[:5]} vs {sorted(by_step)[:5]}")
            continue
        for step, v in by_step.items():
            g = got[step]
            if math.isnan(v):
                ok, err = math.isnan(g), 0.0
            else:
                err = abs(g - v) / max(abs(v), 1e-30)
                ok = float(np.float32(v)) == g or err <= F32_TOL
            if not ok:
                problems.append(f"{t} @ {step}: {g!r} vs {v!r}")
            worst = max(worst, err)
            count += 1
    hcount = 0
    if set(got_histos) != set(want_histos):
        problems.append(f"histogram tags differ: {sorted(set(want_histos) ^ set(got_histos))[:3]}")
    for t, by_step in want_histos.items():
        for step, vals in by_step.items():
            h = got_histos.get(t, {}).get(step)
            if h is None:
                problems.append(f"histogram {t} @ {step} missing")
                continue
            want = (min(vals), max(vals), len(vals), sum(vals), sum(x * x for x in vals))
            have = (h.min, h.max, h.num, h.sum, h.sum_squares)
            if any(abs(a - b) > 1e-12 * max(1.0, abs(b)) for a, b in zip(have, want)) or sum(h.bucket) != len(vals):
                problems.append(f"histogram {t} @ {step}: {have} vs {want}")
            hcount += 1
    if problems:
        report("FAIL", f"tensorboard/{name}", f"{len(problems)} mismatches, first: {problems[0]} (tolerance {F32_TOL:.0e})")
    elif count == 0:
        report("FAIL", f"tensorboard/{name}", "no scalars read back")
    else:
        report("PASS", f"tensorboard/{name}", f"{count} scalars in {len(want_scalars)} tags and {hcount} histograms "
               f"from {len(records)} records, max rel err {worst:.2e} (tolerance {F32_TOL:.0e})")


def synthetic_run(work):
    d = os.path.join(work, "synthetic")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump({"name": "synthetic"}, f)
    rng = random.Random(0)
    names = [f"model.layers.{i}.self_attn.{p}_proj" for i in range(3) for p in ("q", "v")]
    with open(os.path.join(d, "metrics.jsonl"), "w") as f:
        for step in range(0, 120, 10):
            rec = {"step": step, "epoch": step // 50, "loss": 3 * math.exp(-step / 50) + rng.random() * 1e-3,
                   "lr": 1e-3 * (1 - step / 200), "grad_norm": rng.uniform(0.1, 3), "tokens_per_s": rng.uniform(900, 1100),
                   "tokens": 4096 * step, "wall_s": step * 0.37, "adapters": {}}
            for n in names:
                sv = sorted((rng.uniform(0, 2) for _ in range(8)), reverse=True)
                rec["adapters"][n] = {"sv": sv, "erank": rng.uniform(1, 8), "stable_rank": rng.uniform(1, 8),
                                      "fro": rng.uniform(0, 4), "align_left": rng.random(), "align_right": rng.random(),
                                      "angles_left": sorted(rng.uniform(0, 1.57) for _ in range(8)),
                                      "intruders": rng.randrange(3), "intruder_sv": None if step == 0 else rng.uniform(0, 5),
                                      "drift_left": None if step == 0 else rng.uniform(0, 0.1), "sv_entropy": rng.random()}
            if step % 50 == 0:
                rec["eval"] = {"loss": rng.uniform(1, 3), "accuracy": rng.random()}
            f.write(json.dumps(rec) + "\n")
    return d


# interop.sh runs each check from tests/interop; configs are named from the repository root.
REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def main():
    a = ic.parse_args(__doc__.splitlines()[0])
    exe = a.lorascope
    data = os.path.abspath(a.data)

    def guarded(name, make, convert=True):
        try:
            check_run(name, make(), exe, convert)
        except Exception as e:
            report("FAIL", f"tensorboard/{name}", f"{type(e).__name__}: {e}"[:500])

    common = ["--threads", "2"]
    base_out = os.path.join(a.work, "pretrain")

    @functools.lru_cache(maxsize=None)  # once per invocation, shared by the finetune streams
    def pretrain():
        run([exe, *common, "pretrain", "--config", os.path.join(REPO, "configs/lm/pretrain_brown.json"), "--out", base_out,
             "--overwrite", "--set", "name=tiny", "--set", "model.hidden_size=32", "--set", "model.num_layers=2",
             "--set", "model.intermediate_size=64", "--set", "tokenizer.vocab_size=300", "--set", "data.limit=200",
             "--set", "data.max_len=32", "--set", "train.max_steps=5", "--set", "train.batch_size=8",
             "--set", f"data.path={data}/brown"])
        return os.path.join(base_out, "tiny")

    def finetune(out, *sets):
        run([exe, *common, "finetune", "--config", os.path.join(REPO, "configs/lm/compare_spam.json"), "--out", out, "--overwrite",
             "--set", f"base={pretrain()}", "--set", f"data.path={data}/spam-assassin", "--set", "data.limit=120", "--set", "data.max_len=32",
             "--set", "train.max_steps=30", "--set", "train.batch_size=8", "--set", "train.log_every=5",
             "--set", "monitor.every=5", "--set", "train.eval_every=10", "--set", "train.eval_batches=2", *sets])
        return out  # compare_spam.json's runs: muon, adamw

    @functools.lru_cache(maxsize=None)  # one call writes both runs
    def during_training():
        out = os.path.join(a.work, "training")
        shutil.rmtree(out, ignore_errors=True)  # no event file of an earlier invocation is read
        return finetune(out, "--set", "logging.tensorboard=true", "--set", "monitor.geometry_every=10",
                        "--set", "monitor.base_svd_dtype=float32")

    def mf():
        out = os.path.join(a.work, "mf")
        run([exe, "--threads", "2", "mf", "--out", out, "--overwrite", "--set", "name=mf", "--set", "train.steps=200",
             "--set", "train.log_every=20"])
        return os.path.join(out, "mf")

    guarded("finetune", lambda: os.path.join(finetune(os.path.join(a.work, "finetune")), "muon"))
    for r in ("muon", "adamw"):
        guarded(f"training/{r}", lambda r=r: os.path.join(during_training(), r), convert=False)
    guarded("mf", mf)
    guarded("synthetic", lambda: synthetic_run(a.work))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
