#!/usr/bin/env bash
# Spectral logging overhead on the CPU demo fine-tune (BENCHMARKS.md, issue 8 item 3): every
# adapter's spectrum logged every step vs never, modes alternated, REPS repetitions; prints the
# time per step over steps 11-40 (wall_s of metrics.jsonl) for each run of the config.
#   THREADS=1 REPS=3 bash bench/monitor_overhead.sh      (needs runs/base/brown: scripts/demo.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${THREADS:-1}
reps=${REPS:-3}
work=${WORK:-/tmp/lorascope_monitor_overhead}
for rep in $(seq "$reps"); do for every in 1 100000; do
  out=$work/every_${every}_$rep
  build/lorascope --threads "$threads" finetune --config configs/lm/compare_spam.json --out "$out" --overwrite \
    --set base=runs/base/brown --set train.max_steps=40 --set train.log_every=10 \
    --set train.eval_every=1000 --set monitor.every="$every" > "$out.log" 2>&1
  /usr/bin/python3 - "$out" "$every" "$rep" <<'PY'
import glob, json, sys
out, every, rep = sys.argv[1:]
for f in sorted(glob.glob(out + "/*/metrics.jsonl")):
    w = {r["step"]: r["wall_s"] for r in map(json.loads, open(f)) if "wall_s" in r}
    print(f"{f.split('/')[-2]:6} monitor.every={every:>6} rep={rep}: {(w[40] - w[10]) / 30 * 1000:.1f} ms/step (steps 11-40)")
PY
done; done
