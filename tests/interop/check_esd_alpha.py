#!/usr/bin/env python3
"""ESD power-law alpha: lorascope (models/esd_alpha.h, through `lorascope analyze --weights`)
against weightwatcher's WeightWatcher.analyze() with its defaults, on the same weights:

  random      Gaussian matrices, tall, wide and square, and one with fewer than 20 eigenvalues
              (weightwatcher's small-sample fit)
  structured  power-law and exponentially decaying spectra, low rank plus noise, heavy-tailed
              (Student-t) entries
  minilm      every matrix of the real all-MiniLM-L6-v2 (DATA/../models/all-MiniLM-L6-v2), the
              embeddings included (weightwatcher analyzes those too)

Both sides take float64 eigenvalues of the same float32 weights, so alpha agrees to rounding
unless two candidate xmin have KS distances within rounding of each other: tolerance 1e-6
relative on alpha, and the same xmin (relative 1e-9) and tail size.

    PY=$(bash scripts/reference_env.sh | tail -1)
    $PY tests/interop/check_esd_alpha.py --lorascope build/lorascope --work /tmp/esd --data .cache/data
"""
import json
import logging
import math
import os
import subprocess
import sys

import numpy as np
import torch
from safetensors.torch import load_file, save_file

logging.getLogger("weightwatcher").setLevel(logging.ERROR)
import weightwatcher as ww  # noqa: E402

import interop_common as ic  # noqa: E402

ALPHA_TOL = 1e-6
XMIN_TOL = 1e-9
failed = 0


def report(status, name, text):
    global failed
    failed += status == "FAIL"
    print(f"{status} {name}: {text}", flush=True)


def lorascope_esd(exe, tensors, work, tag):
    path = os.path.join(work, f"{tag}.safetensors")
    save_file({k: v.contiguous() for k, v in tensors.items()}, path)
    out = os.path.join(work, f"{tag}_esd")
    p = subprocess.run([exe, "--threads", "2", "analyze", "--weights", path, "--out", out],
                       capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        raise RuntimeError(f"lorascope analyze --weights exited {p.returncode}: {p.stderr.strip()[-500:]}")
    with open(os.path.join(out, "esd.json")) as f:
        return {l["name"]: l for l in json.load(f)["layers"]}


def weightwatcher_esd(tensors):
    """weightwatcher on a model whose Linear layers carry the given (out, in) weights."""
    names = list(tensors)
    layers = []
    for n in names:
        w = tensors[n]
        lin = torch.nn.Linear(w.shape[1], w.shape[0], bias=False)
        with torch.no_grad():
            lin.weight.copy_(w)
        layers.append(lin)
    df = ww.WeightWatcher(model=torch.nn.Sequential(*layers)).analyze()
    out = {}
    for _, row in df.iterrows():
        out[names[int(row["name"])]] = row  # Sequential children are named 0, 1, ...
    return out


def compare(group, ours, theirs, names):
    worst, checked = 0.0, 0
    for n in names:
        o = ours.get(n)
        t = theirs.get(n)
        if t is None:  # weightwatcher skipped it (fewer than min_evals eigenvalues, ...)
            if o is None or o["status"] != "skipped":
                report("FAIL", f"esd_alpha/{group}/{n}", f"weightwatcher skipped it, lorascope: {o and o['status']}",
                       )
            continue
        if o is None or o["status"] != "success":
            report("FAIL", f"esd_alpha/{group}/{n}", f"lorascope status {o and o['status']}, weightwatcher alpha "
                   f"{t['alpha']:.6g} (tolerance {ALPHA_TOL:.0e})")
            continue
        rel = abs(o["alpha"] - t["alpha"]) / abs(t["alpha"])
        xrel = abs(o["xmin"] - t["xmin"]) / abs(t["xmin"])
        same_tail = int(o["num_pl_spikes"]) == int(t["num_pl_spikes"])
        if not (rel <= ALPHA_TOL and xrel <= XMIN_TOL and same_tail):
            report("FAIL", f"esd_alpha/{group}/{n}", f"alpha {o['alpha']:.9g} vs {t['alpha']:.9g} (rel {rel:.1e}), "
                   f"xmin rel {xrel:.1e}, tail {o['num_pl_spikes']} vs {int(t['num_pl_spikes'])} "
                   f"(tolerance {ALPHA_TOL:.0e})")
            continue
        worst = max(worst, rel)
        checked += 1
    report("PASS" if checked else "FAIL", f"esd_alpha/{group}",
           f"{checked} matrices, max rel alpha err {worst:.2e} (tolerance {ALPHA_TOL:.0e})")


def orth(g, m, k):
    q, _ = torch.linalg.qr(torch.randn(m, k, generator=g, dtype=torch.float64))
    return q


def random_set():
    g = torch.Generator().manual_seed(1)
    shapes = [(256, 256), (384, 128), (96, 300), (512, 200), (15, 40)]
    return {f"gaussian_{m}x{n}": (torch.randn(m, n, generator=g) * 0.05) for m, n in shapes}


def structured_set():
    g = torch.Generator().manual_seed(2)
    out = {}
    s = torch.arange(1, 201, dtype=torch.float64) ** -0.7 * 5
    out["power_law_spectrum_300x200"] = (orth(g, 300, 200) * s) @ orth(g, 200, 200).T
    s = 4 * 0.97 ** torch.arange(150, dtype=torch.float64)
    out["exponential_spectrum_150x400"] = (orth(g, 150, 150) * s) @ orth(g, 400, 150).T
    out["low_rank_plus_noise_256x192"] = orth(g, 256, 4) @ torch.diag(torch.tensor([20.0, 9, 5, 3], dtype=torch.float64)) \
        @ orth(g, 192, 4).T + 0.02 * torch.randn(256, 192, generator=g, dtype=torch.float64)
    t = torch.distributions.StudentT(torch.tensor(2.2, dtype=torch.float64))
    torch.manual_seed(3)
    out["student_t_320x160"] = t.sample((320, 160)) * 0.02
    return {k: v.to(torch.float32) for k, v in out.items()}


def main():
    a = ic.parse_args(__doc__.splitlines()[0])
    exe = a.lorascope
    torch.set_num_threads(ic.threads())
    for group, tensors in (("random", random_set()), ("structured", structured_set())):
        try:
            compare(group, lorascope_esd(exe, tensors, a.work, group), weightwatcher_esd(tensors), list(tensors))
        except Exception as e:  # one broken group must not hide the others
            report("FAIL", f"esd_alpha/{group}", f"{type(e).__name__}: {e}"[:400])
    minilm = os.path.join(os.path.dirname(os.path.abspath(a.data)), "models", "all-MiniLM-L6-v2")
    if not os.path.exists(os.path.join(minilm, "model.safetensors")):
        report("SKIP", "esd_alpha/minilm", f"{minilm}/model.safetensors not found")
    else:
        try:
            from transformers import AutoModel
            model = AutoModel.from_pretrained(minilm, dtype=torch.float32)
            df = ww.WeightWatcher(model=model).analyze()
            theirs = {row["longname"] + ".weight": row for _, row in df.iterrows()}
            weights = load_file(os.path.join(minilm, "model.safetensors"))
            ours = lorascope_esd(exe, {k: v for k, v in weights.items() if v.dim() == 2}, a.work, "minilm")
            names = sorted(set(ours) | set(theirs))
            compare("minilm", ours, theirs, names)
        except Exception as e:
            report("FAIL", "esd_alpha/minilm", f"{type(e).__name__}: {e}"[:400])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
