#!/usr/bin/env bash
# README command (1), the main job: installs what is missing, builds, fetches the data, and then
#   1. pretrains the small LLaMA-architecture base model on the Brown corpus (reused when
#      runs/base/brown/model.pt exists),
#   2. LoRA fine-tunes it on SpamAssassin spam-vs-ham with Muon and with AdamW (same seed, same
#      data order) and writes the report runs/compare/report.md (accuracy, per-adapter singular
#      values, effective ranks),
#   3. reproduces the matrix-factorization figures of muon-lora-uniform-growth.md (Fig. 2-4, 7,
#      8, 9, 10-11) into runs/fig*/figures/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup_deps.sh
scripts/build.sh -DLORASCOPE_BUILD_TESTS=OFF
scripts/fetch_data.sh
start=$(date +%s)

if [ -f runs/base/brown/model.pt ]; then
  echo "== base model: reusing runs/base/brown (delete it to pretrain again)"
else
  echo "== pretraining the base model on the Brown corpus -> runs/base/brown"
  build/lorascope pretrain --config configs/lm/pretrain_brown.json --out runs/base --overwrite
fi

echo "== LoRA fine-tuning on SpamAssassin: Muon vs AdamW -> runs/compare"
build/lorascope compare --config configs/lm/compare_spam.json --out runs/compare --overwrite \
  --set base=runs/base/brown

for fig in fig2_specgd_vs_gd fig7_momentum_exact fig8_momentum_newton_schulz fig9_rank fig10_11_depth; do
  out="runs/${fig%%_*}"
  echo "== matrix factorization $fig -> $out"
  build/lorascope mf --config "configs/mf/$fig.json" --out "$out" --overwrite
  build/lorascope plot "$out" --out "$out/figures" >/dev/null
done

echo
echo "done in $(( $(date +%s) - start )) s after the build:"
echo "  fine-tuning report:  runs/compare/report.md"
echo "  MF figures:          runs/fig*/figures/*.png (start with runs/fig2/figures/compare_root_sv.png)"
