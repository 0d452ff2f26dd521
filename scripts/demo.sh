#!/usr/bin/env bash
# README command (1), the main job: installs what is missing, builds, and reproduces the
# matrix-factorization figures of muon-lora-uniform-growth.md (Fig. 2-4, 7, 8, 9, 10-11) into
# runs/, with PNG figures in runs/<figure>/figures/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup_deps.sh
scripts/build.sh -DLORASCOPE_BUILD_TESTS=OFF
for fig in fig2_specgd_vs_gd fig7_momentum_exact fig8_momentum_newton_schulz fig9_rank fig10_11_depth; do
  out="runs/${fig%%_*}"
  echo "== $fig -> $out"
  build/lorascope mf --config "configs/mf/$fig.json" --out "$out" --overwrite
  build/lorascope plot "$out" --out "$out/figures" >/dev/null
done
echo "figures: $(ls runs/*/figures/*.png | wc -l) PNG files under runs/*/figures (start with runs/fig2/figures/compare_sv.png)"
