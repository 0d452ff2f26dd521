// Theorem 1 of deep-mf-edge-of-stability.md in one dimension: under strict balancing every layer
// carries the same value rho on the top component, W_{L:1} has rho^L there, and GD on
// f = 1/2 (rho^L - s)^2 (per layer: d f / d rho_l = (rho^L - s) rho^(L-1)) is the scalar map
//   F(rho) = rho (1 + eta (s - rho^L) rho^(L-2)).
// A 2-cycle rho_1 -> rho_2 = z rho_1 -> rho_1 satisfies, adding its two steps,
//   (rho_1^L - s) rho_1^(L-1) + (rho_2^L - s) rho_2^(L-1) = 0,
// i.e. g(rho_1) = 0 with
//   g(rho) = rho^L (1 + z^(2L-1)) / (1 + z^(L-1)) - s,   z = 1 + eta (s - rho^L) rho^(L-2).
// Correction: the paper prints z = 1 + eta L (s - rho^L) rho^(L-2). The factor L does not come
// from the per-layer map above, and tests/test_eos.cpp shows the simulated 2-cycle matches the
// roots of g with eta, not with eta L.
// eta here is the theory's (loss with 1/2); the figures' code convention uses 2 eta.
#pragma once

#include <optional>
#include <utility>

namespace lorascope {

double balanced_scalar_step(double rho, double s, int depth, double eta);
// g above; eta_factor = L reproduces the paper's misprint (only the tests use it).
double two_cycle_g(double rho, double s, int depth, double eta, double eta_factor = 1.0);
// The 2-cycle born at eta = 2 / (L s^(2-2/L)): (rho_1^L, rho_2^L), the two values of the
// end-to-end top singular value, low first; nullopt below the threshold or when none is found.
std::optional<std::pair<double, double>> two_cycle_values(double s, int depth, double eta,
                                                          double eta_factor = 1.0);

}  // namespace lorascope
