#!/usr/bin/env bash
# Per-step cost of data parallelism in `lorascope finetune`: the gradient all-reduce wait (what
# backward did not hide) and the optimizer step with Muon sharded or replicated, against the
# plain single-process run. Self-contained: writes a toy corpus and task, pretrains a small base
# (hidden 128, 4 layers, as configs/lm/pretrain_brown.json) and LoRA fine-tunes it with Muon.
#
#   bash bench/distributed_overhead.sh                          # CPU: Gloo, 1 and 2 processes
#   DEVICE=cuda BACKEND=nccl NPROCS="1" LORASCOPE=build-gpu/lorascope OUT=/tmp/dp \
#     bash bench/distributed_overhead.sh                        # GPU, NCCL, 1 rank
# The GPU line needs build-gpu/ configured with NCCL: GPU_CMAKE_ARGS="-DLORASCOPE_WITH_NCCL=ON
# -DLORASCOPE_NCCL_INCLUDE_DIR=<site-packages>/nvidia/nccl/include" bash scripts/gpu_build.sh LOG lorascope
# (not run yet: no GPU was lent so far). OUT must not be the device tool's $OUT (too many files).
#
# Knobs (environment): LORASCOPE (binary, default build/lorascope), DEVICE (cpu|cuda), BACKEND
# (gloo|nccl|auto), NPROCS (world sizes, default "1 2"), STEPS (default 40), BATCH (global
# batch, default 16), THREADS (intra-op threads per process, default cores / world size), OUT.
# Prints one line per configuration; numbers come from each run's summary.json.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${LORASCOPE:-build/lorascope}
DEVICE=${DEVICE:-cpu}
BACKEND=${BACKEND:-auto}
NPROCS=${NPROCS:-"1 2"}
STEPS=${STEPS:-40}
BATCH=${BATCH:-16}
OUT=${OUT:-$(mktemp -d /tmp/lorascope_dp_bench.XXXXXX)}
mkdir -p "$OUT"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
CORES=$(nproc)

"$PY" - "$OUT" <<'EOF'
import random, sys, os
out = sys.argv[1]
rng = random.Random(7)
adj = "good bad small big red old".split(); noun = "cat dog mat tree house river".split()
verb = "sees likes finds hears".split()
with open(os.path.join(out, "corpus.txt"), "w") as f:
    for _ in range(3000):
        f.write(f"the {rng.choice(adj)} {rng.choice(noun)} {rng.choice(verb)} the {rng.choice(noun)} .\n\n")
with open(os.path.join(out, "task.tsv"), "w") as f:
    f.write("sentence\tlabel\n")
    for i in range(4000):
        pos = i % 2 == 0
        f.write(f"the {'good' if pos else 'bad'} {rng.choice(noun)} {rng.choice(verb)} the "
                f"{rng.choice(adj)} {rng.choice(noun)}\t{int(pos)}\n")
EOF

quiet() {  # log file, command...: output to the log; on failure show its end and stop
  local log=$1; shift
  "$@" > "$log" 2>&1 || { tail -20 "$log" >&2; echo "distributed_overhead: failed: $* (log: $log)" >&2; exit 1; }
}

if [ ! -f "$OUT/base/base/model.pt" ]; then
  quiet "$OUT/pretrain.log" "$BIN" pretrain --out "$OUT/base" --device "$DEVICE" --set name=base --set data.kind=text \
    --set data.path="$OUT/corpus.txt" --set data.max_len=64 --set tokenizer.vocab_size=256 \
    --set optim.name=adamw --set optim.lr=3e-3 --set train.max_steps=20 --set train.batch_size=16
fi

finetune=(finetune --device "$DEVICE" --set base="$OUT/base/base" --set data.kind=glue_tsv
          --set data.path="$OUT/task.tsv" --set data.max_len=64 --set lora.r=16 --set lora.alpha=32
          --set 'lora.targets=["q_proj","k_proj","v_proj","o_proj","gate_proj","up_proj","down_proj"]'
          --set optim.name=muon --set optim.lr=0.02 --set optim.orthogonalizer=newton_schulz
          --set train.max_steps="$STEPS" --set train.batch_size="$BATCH" --set train.log_every=1000
          --set monitor.every=1000 --set data.validation_fraction=0.01 --set data.test_fraction=0.01)

report() {  # label, run directory
  "$PY" - "$1" "$2/run/summary.json" <<'EOF'
import json, sys
label, path = sys.argv[1], sys.argv[2]
s = json.load(open(path))
d = s.get("distributed", {})
step = s["wall_seconds"] / max(1, s["steps"])
ar = d.get("allreduce_wait_s_per_step")
print(f"{label:34s} step {step*1e3:8.2f} ms  optimizer {s['optimizer_s_per_step']*1e3:7.2f} ms  "
      f"all-reduce wait {'-' if ar is None else f'{ar*1e3:7.2f} ms'}  buckets {d.get('buckets', '-')}  "
      f"tokens/s {s['tokens_per_second']:9.0f}  final loss {s['final_train_loss']:.5f}")
EOF
}

threads=$(( CORES > 1 ? CORES : 1 ))
quiet "$OUT/single.log" "$BIN" --threads "${THREADS:-$threads}" "${finetune[@]}" --out "$OUT/single" --overwrite
report "1 process (no process group)" "$OUT/single"
for n in $NPROCS; do
  t=${THREADS:-$(( CORES / n > 0 ? CORES / n : 1 ))}
  for variant in "" "--no-shard-muon" "--no-overlap"; do
    name="dp${n}${variant//-/_}"
    quiet "$OUT/$name.log" "$BIN" launch --nproc "$n" --master-port 0 -- --threads "$t" "${finetune[@]}" \
      --dist-backend "$BACKEND" $variant --out "$OUT/$name" --overwrite
    report "$n rank(s) ${variant:-(sharded, overlap)}" "$OUT/$name"
  done
done
echo "runs in $OUT"
