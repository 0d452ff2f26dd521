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


def setup_peft(description):
    """parse_args + setup_torch, then transformers (quiet) and peft, their versions printed.

    Returns (args, torch, transformers, peft)."""
    a = parse_args(description)
    torch = setup_torch()
    import peft
    import transformers
    transformers.utils.logging.set_verbosity_error()
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, peft {peft.__version__}", flush=True)
    return a, torch, transformers, peft


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


# Tiny random transformers models for the PEFT checks (check_peft, check_train_step); each check
# says whether the LLaMA ties its embeddings.
TINY_LLAMA = dict(vocab_size=256, hidden_size=64, intermediate_size=112, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=64, initializer_range=0.1, pad_token_id=0)
TINY_ROBERTA = dict(vocab_size=256, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                    max_position_embeddings=40, initializer_range=0.1, pad_token_id=1, type_vocab_size=1,
                    hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, num_labels=3)


def is_classifier(arch):
    """A transformers *ForSequenceClassification architecture (else a causal LM)."""
    return "Sequence" in arch


def head(arch):
    """lorascope's --head for a transformers architecture."""
    return "classification" if is_classifier(arch) else "causal_lm"


def peft_task(arch):
    """PEFT's task_type for a transformers architecture."""
    return "SEQ_CLS" if is_classifier(arch) else "CAUSAL_LM"


def padded_batch(torch, vocab, pad, seed, left_pad, B=3, T=12):
    """Seeded ids in [3, vocab): row 1 right-padded by 4, row 2 left-padded by left_pad, pad ids at padding."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, vocab, (B, T), generator=g)
    mask = torch.ones(B, T, dtype=torch.long)
    mask[1, T - 4:] = 0
    mask[2, :left_pad] = 0
    ids[mask == 0] = pad
    return ids, mask


class RandomBases:
    """Random-init transformers checkpoints (seed 0), one per architecture, saved once under work/<arch>.

    configs: architecture -> config keywords."""

    def __init__(self, torch, transformers, work, configs):
        self.torch, self.transformers, self.work, self.configs = torch, transformers, work, configs
        self.dirs = {}

    def dir(self, arch):
        if arch not in self.dirs:
            cls = getattr(self.transformers, arch)
            cfg = cls.config_class(**self.configs[arch])
            cfg.architectures = [arch]
            self.torch.manual_seed(0)
            self.dirs[arch] = save_pretrained(cls(cfg).float().eval(), os.path.join(self.work, arch))
        return self.dirs[arch]
