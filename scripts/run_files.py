"""Reading lorascope run directories from Python (shared by plot_runs.py and report.py).

Errors are InputError("PROG: PATH: what was expected"); the calling script sets PROG and turns
them into exit code 2.
"""
import json
import sys

NAN = float("nan")
PROG = "lorascope"


class InputError(Exception):
    def __init__(self, path, what):
        super().__init__(f"{PROG}: {path}: {what}")


def warn(msg):
    print(f"{PROG}: warning: {msg}", file=sys.stderr)


def read_json(path, what):
    try:
        obj = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(path, f"missing (expected {what})")
    except OSError as e:
        raise InputError(path, f"unreadable ({e.strerror})")
    except ValueError as e:
        raise InputError(path, f"malformed JSON, expected {what} ({e})")
    if not isinstance(obj, dict):
        raise InputError(path, f"expected a JSON object ({what})")
    return obj


def num(x):
    # The C++ writer emits null for NaN/inf; treat anything non-numeric as a gap.
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else NAN


def load_metrics(path, required=True):
    """The records of a metrics.jsonl; a torn last line (killed run) is skipped with a warning."""
    if not path.is_file():
        raise InputError(path, "missing (expected one JSON metrics object per line)")
    recs = []
    with path.open() as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                warn(f"{path}:{lineno}: skipping unparsable line")
                continue
            if not isinstance(rec, dict) or not isinstance(rec.get("step"), (int, float)):
                warn(f"{path}:{lineno}: skipping line without a numeric 'step'")
                continue
            recs.append(rec)
    if not recs:
        if required:
            raise InputError(path, "no parseable metric lines (expected JSON objects with 'step')")
        warn(f"{path}: no metric lines; the run has no curves")
    return recs
