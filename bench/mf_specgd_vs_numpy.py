#!/usr/bin/python3
"""Benchmark: lorascope vs NumPy on the paper's Fig. 2 SpecGD run.

Run with Debian's python (it has numpy; the pyenv `python3` on PATH does not):

    /usr/bin/python3 bench/mf_specgd_vs_numpy.py [--threads 1] [--repeats 3] [--steps 10000]
    /usr/bin/python3 bench/mf_specgd_vs_numpy.py --numpy-only      # no binary needed

Task: (m,n,r) = (60,70,5), Y = U_r diag(8,5,3,1.5,0.7) V_r^T, A0 = 0, B0 = 1e-3 N(0,1),
loss 1/2||AB - Y||_F^2, SpecGD (A <- A - eta T(grad_A), T(M) = U V^T of the thin SVD),
eta = 0.01, logging every 10 steps to a JSON-lines file. Both sides read the same
target.json / init.json, so they start from identical Y, A0, B0 and must produce the same
trajectory (checked below). The NumPy side runs in a child process, like lorascope, so
"process wall" means the same thing for both; the headline ratio uses loop time only.
"""
import argparse, json, math, os, platform, statistics, subprocess, sys, tempfile, time

M, N, R = 60, 70, 5
SIGMA = [8.0, 5.0, 3.0, 1.5, 0.7]
GAMMA, LR, SEED = 1e-3, 0.01, 0


def orth(G, np):
    """T(G) = U V^T of the thin SVD; singular values <= max(m,n)*eps*s_max count as zero."""
    U, s, Vt = np.linalg.svd(G, full_matrices=False)
    keep = s > max(G.shape) * np.finfo(G.dtype).eps * (s[0] if s.size else 0.0)
    return U[:, keep] @ Vt[keep]


def spec_stats(s, fro, np):
    """Effective rank exp(H(s/sum s)) and stable rank ||W||_F^2 / s_1^2 (0 for W = 0)."""
    tot = float(s.sum())
    if tot <= 0.0:
        return 0.0, 0.0
    p = s[s > 0] / tot
    return math.exp(-float((p * np.log(p)).sum())), fro * fro / float(s[0]) ** 2


def numpy_worker(config, outdir):
    """The NumPy peer: same math per step as lorascope, incl. the metrics every log_every."""
    import numpy as np
    cfg = json.load(open(config))  # the very config/inputs lorascope gets
    steps, log_every = cfg["train"]["steps"], cfg["train"]["log_every"]
    tgt, init = (json.load(open(cfg["task"][k])) for k in ("target_file", "init_file"))
    Ur, Vr = np.array(tgt["U"]), np.array(tgt["V"])
    Y = (Ur * np.array(tgt["sigma"])) @ Vr.T
    A, B = (np.array(f, dtype=np.float64) for f in init["factors"])
    W, Res = np.empty((M, N)), np.empty((M, N))  # reused every step

    def log(f, step):
        # Singular values of W = Qa (Ra Rb^T) Qb^T from the 5x5 core, never the 60x70 SVD.
        Ra, Rb = np.linalg.qr(A, mode="r"), np.linalg.qr(B.T, mode="r")
        s = np.linalg.svd(Ra @ Rb.T, compute_uv=False)
        fro = float(np.linalg.norm(W))
        erank, srank = spec_stats(s, fro, np)
        UW = Ur.T @ W
        G = UW @ Vr
        d = np.diag(G)
        factors = []
        for F in (A, B):
            sf = np.linalg.svd(F, compute_uv=False)
            ff = float(np.linalg.norm(F))
            fe, fs = spec_stats(sf, ff, np)
            factors.append({"sv": sf.tolist(), "erank": fe, "stable_rank": fs, "fro": ff})
        rec = {"step": step, "loss": 0.5 * float(np.vdot(Res, Res)), "sv": s.tolist(),
               "erank": erank, "stable_rank": srank, "fro": fro, "d": d.tolist(),
               "off_diag": float(np.linalg.norm(G - np.diag(d))),
               "x_zperp": math.sqrt(max(0.0, float(np.vdot(UW, UW) - np.vdot(G, G)))),
               "factors": factors}
        f.write(json.dumps(rec) + "\n")

    with open(os.path.join(outdir, "metrics.jsonl"), "w") as f:
        t0 = time.perf_counter()
        for t in range(steps + 1):
            np.matmul(A, B, out=W)
            np.subtract(W, Y, out=Res)
            if t % log_every == 0 or t == steps:
                log(f, t)  # "step t" = state after t updates
            if t == steps:
                break
            gA, gB = Res @ B.T, A.T @ Res  # both from the same iterate
            A -= LR * orth(gA, np)
            B -= LR * orth(gB, np)
        secs = time.perf_counter() - t0
    json.dump({"train_seconds": secs, "steps_per_second": steps / secs},
              open(os.path.join(outdir, "summary.json"), "w"))


def make_inputs(workdir, steps):
    """Fixed-seed Y factors and init, written as JSON (repr floats round-trip exactly)."""
    import numpy as np
    rng = np.random.default_rng(SEED)
    def rand_orth(k):
        Q, Rq = np.linalg.qr(rng.standard_normal((k, R)))
        return Q * np.sign(np.diag(Rq))
    Ur, Vr = rand_orth(M), rand_orth(N)
    A0, B0 = np.zeros((M, R)), GAMMA * rng.standard_normal((R, N))
    paths = {k: os.path.join(workdir, k + ".json") for k in ("target", "init", "config")}
    json.dump({"U": Ur.tolist(), "sigma": SIGMA, "V": Vr.tolist()}, open(paths["target"], "w"))
    json.dump({"factors": [A0.tolist(), B0.tolist()]}, open(paths["init"], "w"))
    cfg = {"name": "bench_fig2_specgd", "seed": SEED,
           "task": {"m": M, "n": N, "rank": R, "depth": 2, "target_sv": SIGMA, "gamma": GAMMA,
                    "dtype": "float64", "target_file": paths["target"], "init_file": paths["init"]},
           "optim": {"name": "muon", "lr": LR, "momentum": 0.0, "orthogonalizer": "exact"},
           "train": {"steps": steps, "log_every": 10}}
    json.dump(cfg, open(paths["config"], "w"), indent=1)
    return paths["config"]


def run_side(cmd, rundir):
    """Run one side as a child process; return (loop s, process wall s, metrics list)."""
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"FAILED (rc={p.returncode}): {' '.join(cmd)}\n--- stdout:\n{p.stdout}\n--- stderr:\n{p.stderr}")
    summary = json.load(open(os.path.join(rundir, "summary.json")))
    with open(os.path.join(rundir, "metrics.jsonl")) as f:
        metrics = [json.loads(line) for line in f if line.strip()]
    return summary["train_seconds"], wall, metrics


def max_rel(a, b):
    import numpy as np
    a, b = np.asarray(a, float), np.asarray(b, float)
    den = np.maximum(np.abs(a), np.abs(b))
    nz = den > 0
    return float((np.abs(a - b)[nz] / den[nz]).max()) if nz.any() else 0.0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--lorascope", default=os.path.join(root, "build", "lorascope"))
    ap.add_argument("--steps", type=int, default=10000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--numpy-only", action="store_true", help="skip lorascope (testing)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir with all outputs")
    ap.add_argument("--_worker", nargs=2, help=argparse.SUPPRESS)  # CONFIG OUTDIR
    args = ap.parse_args()
    # Same BLAS threading for both sides; must be set before numpy is imported (children inherit).
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    if args._worker:
        return numpy_worker(config=args._worker[0], outdir=args._worker[1])

    tmp = tempfile.mkdtemp(prefix="mf_specgd_bench_")
    config = make_inputs(tmp, args.steps)
    sides = {"numpy": lambda d: [sys.executable, os.path.abspath(__file__), "--_worker", config, d,
                                 "--threads", str(args.threads)]}
    if not args.numpy_only:
        if not os.access(args.lorascope, os.X_OK):
            sys.exit(f"lorascope binary not found: {args.lorascope} (use --numpy-only)")
        # --threads is a top-level option of the CLI, so it goes before the subcommand.
        sides["lorascope"] = lambda d: [args.lorascope, "--threads", str(args.threads), "mf",
                                        "--config", config, "--out", d]
    res = {}
    for rep in range(args.repeats):  # interleave sides so drift in machine load hits both
        for name, cmd in sides.items():
            d = os.path.join(tmp, f"{name}_{rep}")
            os.makedirs(d)
            rundir = d if name == "numpy" else os.path.join(d, "bench_fig2_specgd")
            loop, wall, metrics = run_side(cmd(d), rundir)
            print(f"[{name} rep {rep}] loop {loop:.3f}s  wall {wall:.3f}s", flush=True)
            r = res.setdefault(name, {"loop": [], "wall": [], "metrics": metrics})
            r["loop"].append(loop); r["wall"].append(wall)

    status = 0
    if "lorascope" in res:  # identical work check: same steps, same losses and spectra
        ln = {m["step"]: m for m in res["numpy"]["metrics"]}
        ll = {m["step"]: m for m in res["lorascope"]["metrics"]}
        common = sorted(set(ln) & set(ll))
        if not common:
            sys.exit(f"no matching logged steps (numpy {sorted(ln)[:3]}..., lorascope {sorted(ll)[:3]}...)")
        dl = max(max_rel(ll[s]["loss"], ln[s]["loss"]) for s in common)
        ds = max(max_rel(ll[s]["sv"], ln[s]["sv"]) for s in common)
        last = common[-1]
        dfin = max_rel(ll[last]["loss"], ln[last]["loss"])
        print(f"\ntrajectory check over {len(common)} matching steps "
              f"(numpy logged {len(ln)}, lorascope {len(ll)}):")
        print(f"  max rel diff loss {dl:.3e}, sv {ds:.3e}; final (step {last}) loss rel diff {dfin:.3e}")
        if dfin > 1e-6 or last != args.steps:
            print("  MISMATCH: final losses differ (or step missing); the two sides do different work")
            status = 1

    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")),
               platform.processor() or "unknown")
    print(f"\n{'implementation':<15}{'steps/s':>12}{'loop s':>10}{'wall s':>10}{'final loss':>16}")
    for name in sorted(res, key=lambda k: k != "lorascope"):
        r = res[name]
        loop, wall = statistics.median(r["loop"]), statistics.median(r["wall"])
        print(f"{name:<15}{args.steps / loop:>12.1f}{loop:>10.3f}{wall:>10.3f}"
              f"{r['metrics'][-1]['loss']:>16.6e}")
    if "lorascope" in res:
        ratio = statistics.median(res["numpy"]["loop"]) / statistics.median(res["lorascope"]["loop"])
        print(f"ratio lorascope/numpy: {ratio:.2f}x (target >= 3x)")
    print(f"cpu: {cpu}; threads: {args.threads}; steps: {args.steps}; repeats: {args.repeats} (medians)")
    if args.keep:
        print(f"outputs kept in {tmp}")
    else:
        import shutil; shutil.rmtree(tmp, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
