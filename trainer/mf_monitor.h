// What the matrix-factorization runs log at each logging step (muon-lora-uniform-growth.md
// Sec. 5.2 and 7): spectral stats of the product W and of each factor, and the paper's core
// variables in the target's singular basis (U_k, V_k, k = rank of Y):
//   G        = U_k^T W V_k            (k x k; "core product", = X Z for W = A B)
//   d_i      = G_ii = u_i^T W v_i     (surrogate of sigma_i(W), Lemma 5.2; also the projections)
//   off_diag = ||Off(G)||_F
//   x_zperp  = ||U_k^T W V_perp||_F   (= ||X Z_perp||_F), from ||U_k^T W||^2 - ||G||^2
// Nothing m x n is formed: G and U_k^T W are built factor by factor.
#pragma once

#include <nlohmann/json.hpp>

#include <vector>

#include "data/mf_target.h"
#include "models/factorization.h"

namespace lorascope {

struct MFSnapshot {
  std::vector<double> d;
  double off_diag = 0, x_zperp = 0;
};

MFSnapshot mf_core_variables(const Factorization& f, const MFTarget& target);

// The record for metrics.jsonl minus step/time fields.
nlohmann::json mf_spectral_record(const Factorization& f, const MFTarget& target,
                                  bool with_factors);

}  // namespace lorascope
