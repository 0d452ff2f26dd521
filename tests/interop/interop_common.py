"""Shared pieces of the interop checks (tests/interop/check_*.py, run by scripts/interop.sh).

Protocol: every check script takes --lorascope BINARY --work SCRATCH --data DATA, prints one line
per check, `PASS name: measured (tolerance tol)`, `FAIL name: what differed (tolerance tol)` or
`SKIP name: why`, and exits 1 when a check failed. Helpers here only; keep them small.
"""
import argparse
import json
import os
import subprocess
import sys
import time
import traceback


def parse_args(description, extra=None):
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--lorascope", required=True, help="the lorascope binary")
    ap.add_argument("--work", required=True, help="scratch directory (created)")
    ap.add_argument("--data", default=".cache/data", help="datasets (scripts/fetch_data.sh)")
    if extra:
        extra(ap)
    a = ap.parse_args()
    a.lorascope = os.path.abspath(a.lorascope)
    os.makedirs(a.work, exist_ok=True)
    return a


def setup_torch():
    """Deterministic float32 CPU torch with the thread count of LORASCOPE_INTEROP_THREADS (2)."""
    import torch
    torch.set_num_threads(threads())
    torch.manual_seed(0)
    return torch


def threads():
    return int(os.environ.get("LORASCOPE_INTEROP_THREADS", "2"))


def device():
    """cpu, or cuda on a GPU machine (scripts/interop.sh --device cuda)."""
    return os.environ.get("LORASCOPE_INTEROP_DEVICE", "cpu")


def driver_path(lorascope):
    """The test-only C++ driver (tests/interop_driver.cpp), built beside the tests."""
    env = os.environ.get("LORASCOPE_INTEROP_DRIVER")
    if env:
        return env
    return os.path.join(os.path.dirname(lorascope), "tests", "lorascope_interop_driver")


class Report:
    """Collects PASS/FAIL/SKIP lines; finish() exits 1 when anything failed."""

    def __init__(self, script):
        self.script = script
        self.failed = 0
        self.passed = 0
        self.t0 = time.time()

    def line(self, status, name, text):
        print(f"{status} {name}: {text}", flush=True)

    def check(self, name, ok, measured, tolerance):
        """measured and tolerance are strings or numbers (numbers are printed as %.2e)."""
        m = f"{measured:.2e}" if isinstance(measured, float) else str(measured)
        t = f"{tolerance:.0e}" if isinstance(tolerance, float) else str(tolerance)
        if ok:
            self.passed += 1
            self.line("PASS", name, f"{m} (tolerance {t})")
        else:
            self.failed += 1
            self.line("FAIL", name, f"{m} (tolerance {t})")
        return ok

    def close(self, name, err, tol, what="max rel err"):
        """PASS when err <= tol (err a float; NaN fails)."""
        return self.check(name, err <= tol, f"{what} {err:.2e}", tol)

    def skip(self, name, why):
        self.line("SKIP", name, why)

    def guarded(self, name, f, *args, **kwargs):
        """Runs f; an exception is one FAIL named `name` (the other checks still run)."""
        try:
            return f(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 - one broken case must not hide the others
            traceback.print_exc()
            self.failed += 1
            self.line("FAIL", name, f"{type(e).__name__}: {str(e).strip()[-400:]} (tolerance n/a)")
            return None

    def finish(self):
        print(f"{self.script}: {self.passed} passed, {self.failed} failed in {time.time() - self.t0:.0f} s",
              flush=True)
        sys.exit(1 if self.failed else 0)


def run(cmd, timeout=600):
    """Runs a lorascope command; raises with its stderr when it fails (a hang is bounded)."""
    cmd = [str(c) for c in cmd]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {p.returncode}: {p.stderr.strip()[-1500:]}")
    return p


def lorascope(exe, *args, timeout=600):
    return run([exe, "--threads", str(threads()), *args], timeout=timeout)


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f)
    return path


def rel_err(a, b):
    """max |a - b| / max |b|: the error relative to the reference's scale (b is the reference)."""
    import torch
    a = a.double()
    b = b.double()
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
    scale = b.abs().max().clamp_min(1e-300)
    return float((a - b).abs().max() / scale) if b.numel() else 0.0


def save_pretrained(model, path, **kwargs):
    """transformers' save_pretrained without its progress bars."""
    import transformers
    transformers.utils.logging.disable_progress_bar()
    model.save_pretrained(path, **kwargs)
    return path
