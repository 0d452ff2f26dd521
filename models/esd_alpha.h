// Power-law exponent alpha of a weight matrix's empirical spectral density (ESD), by the rule of
// the weightwatcher package (0.7.7, WeightWatcher.analyze() with its defaults: pl_package "ww",
// fix_fingers off, xmax unset, no normalization, min_evals 8, max_evals 15000, max_N 50000):
//
//  1. lambda_i = sigma_i(W)^2, the eigenvalues of W^T W (N x M, N >= M, not divided by N), all M
//     of them, in float64; those <= 1e-5 (weightwatcher's EVALS_THRESH) are dropped.
//  2. Every eigenvalue but the largest is a candidate xmin = lambda_(i) (ascending order); the
//     tail above it, n = N - i values, gets the continuous power-law MLE (Clauset, Shalizi &
//     Newman 2009, eq. 3.1)  alpha_i = 1 + n / sum_{j >= i} ln(lambda_(j) / lambda_(i)),
//     and, when alpha_i > 1, the Kolmogorov-Smirnov distance
//     D_i = max_{t < n} |1 - (lambda_(i+t) / lambda_(i))^(1 - alpha_i) - t / n|  (else D_i = 1).
//  3. xmin is the first candidate of least D; alpha is its alpha_i.
//  With fewer than 20 eigenvalues (WWFit.fit_powerlaw_smallN) the MLE is bias-corrected,
//  alpha_i = 1 + (n - 1) / s_i, and only candidates with n >= 8 and s_i > 1e-12 get a D (the
//  others keep alpha = 0, D = 1); with no such candidate, the whole set is the tail. That
//  function selects by D_i - 0.868 / sqrt(n), but WWFit's constructor then re-selects the least
//  D_i, and the latter is what weightwatcher reports, so that is the rule here too.
// Layers weightwatcher skips (M < 8, M > 15000, N > 50000) get status "skipped" and no alpha.
// tests/interop/check_esd_alpha.py compares this with weightwatcher itself.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

namespace lorascope {

struct PowerLawFit {
  double alpha = 0;          // NaN unless status == "success"
  double xmin = 0;
  double D = 0;              // KS distance at xmin
  double sigma = 0;          // (alpha - 1) / sqrt(tail size), weightwatcher's "sigma"
  int64_t num_evals = 0;     // eigenvalues above the threshold
  int64_t num_pl_spikes = 0; // eigenvalues >= xmin (the fitted tail)
  std::string status;        // "success" | "failed" | "skipped"
};

// Steps 2-3 on eigenvalues (any order; those <= 1e-5 are dropped first). Fewer than two left:
// status "failed" (weightwatcher's fit raises).
PowerLawFit fit_power_law(std::vector<double> evals);

// Eigenvalues of W^T W (sigma_i^2, ascending, float64), and the whole rule on a matrix.
std::vector<double> esd_eigenvalues(const at::Tensor& W);
PowerLawFit esd_alpha(const at::Tensor& W);

}  // namespace lorascope
