#!/usr/bin/env python3
"""Regenerates tests/golden/esd_alpha/cases.json: small float32 matrices and weightwatcher's
ESD power-law fit of each (WeightWatcher.analyze() with its defaults), for the venv-free test
tests/test_esd_alpha.cpp.

    PY=$(bash scripts/reference_env.sh | tail -1)
    OMP_NUM_THREADS=1 $PY tests/golden/make_esd_alpha.py
"""
import json
import logging
import math
import os
import sys

import numpy as np
import torch
import weightwatcher as ww

logging.getLogger("weightwatcher").setLevel(logging.ERROR)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "esd_alpha", "cases.json")


def orth(rng, m, k):
    q, _ = np.linalg.qr(rng.standard_normal((m, k)))
    return q


def cases():
    rng = np.random.default_rng(20)
    yield "gaussian_64x48", rng.standard_normal((64, 48)) / 8
    yield "gaussian_small_n_12x10", rng.standard_normal((12, 10))
    yield "student_t_80x40", rng.standard_t(2.5, size=(80, 40)) / 10
    s = np.arange(1, 51) ** -0.8 * 4
    yield "power_law_spectrum_60x50", (orth(rng, 60, 50) * s) @ orth(rng, 50, 50).T
    yield "low_rank_plus_noise_30x50", orth(rng, 30, 3) @ np.diag([9.0, 5.0, 3.0]) @ orth(rng, 50, 3).T \
        + 0.05 * rng.standard_normal((30, 50))
    yield "skipped_7x20", rng.standard_normal((7, 20))


def main():
    out = []
    for name, w in cases():
        w32 = w.astype(np.float32)
        layer = torch.nn.Linear(w32.shape[1], w32.shape[0], bias=False)
        with torch.no_grad():
            layer.weight.copy_(torch.from_numpy(w32))
        df = ww.WeightWatcher(model=torch.nn.Sequential(layer)).analyze()
        case = {"name": name, "shape": list(w32.shape),
                "weights": [float(f"{v:.9g}") for v in w32.ravel().tolist()]}
        if len(df) == 0:
            case["status"] = "skipped"
        else:
            row = df.iloc[0]
            case.update(status="success", alpha=float(row["alpha"]), xmin=float(row["xmin"]), D=float(row["D"]),
                        sigma=float(row["sigma"]), num_pl_spikes=int(row["num_pl_spikes"]),
                        num_evals=int(row["num_evals"]))
        out.append(case)
        print(name, case.get("alpha"), case["status"], file=sys.stderr)
    doc = {"_generated_by": "tests/golden/make_esd_alpha.py", "weightwatcher": ww.__version__, "cases": out}
    with open(OUT, "w") as f:
        json.dump(doc, f)
        f.write("\n")


if __name__ == "__main__":
    main()
