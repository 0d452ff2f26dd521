#!/usr/bin/env bash
# README command (1), the main job: installs what is missing, builds, fetches the data and the
# pretrained all-MiniLM-L6-v2 (BERT, 6 layers, width 384), and then
#   1. LoRA fine-tunes MiniLM (r 8, alpha 16, query and value) on SpamAssassin spam-vs-ham with
#      Muon, SpecGD and AdamW (same seed, split and data order) -> runs/minilm_spam/report.md
#      (accuracy, every adapter's singular values, effective ranks),
#   2. the same on Brown's 15 genres -> runs/minilm_brown/report.md,
#   3. reproduces the matrix-factorization figures of muon-lora-uniform-growth.md (Fig. 2-4, 7,
#      8, 9, 10-11) into runs/fig*/figures/.
# The self-pretrained LLaMA decoder experiment is not part of it (README: "The decoder
# experiment"); neither is the full-size study (configs/lm/minilm_full.json).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup_deps.sh
scripts/build.sh -DLORASCOPE_BUILD_TESTS=OFF
scripts/fetch_data.sh
scripts/fetch_model.sh
model="${LORASCOPE_MODELS_DIR:-.cache/models}/all-MiniLM-L6-v2"
start=$(date +%s)

echo "== LoRA on MiniLM, SpamAssassin spam vs ham: Muon vs SpecGD vs AdamW -> runs/minilm_spam"
build/lorascope compare --config configs/lm/minilm_spam.json --out runs/minilm_spam --overwrite --model "$model"
echo "== LoRA on MiniLM, Brown's 15 genres: Muon vs SpecGD vs AdamW -> runs/minilm_brown"
build/lorascope compare --config configs/lm/minilm_brown.json --out runs/minilm_brown --overwrite --model "$model"

for fig in fig2_specgd_vs_gd fig7_momentum_exact fig8_momentum_newton_schulz fig9_rank fig10_11_depth; do
  out="runs/${fig%%_*}"
  echo "== matrix factorization $fig -> $out"
  build/lorascope mf --config "configs/mf/$fig.json" --out "$out" --overwrite
  build/lorascope plot "$out" --out "$out/figures" >/dev/null
done

echo
echo "done in $(( $(date +%s) - start )) s after the build:"
echo "  MiniLM reports:  runs/minilm_spam/report.md, runs/minilm_brown/report.md"
echo "  MF figures:      runs/fig*/figures/*.png (start with runs/fig2/figures/compare_root_sv.png)"
