// Polar Express (Amsel, Persson, Musco, Gower 2025, "The Polar Express: Optimal Matrix Sign
// Methods and Their Application to the Muon Algorithm", arXiv 2505.16932): the quintic
// iteration of Newton-Schulz,
//
//   X_0 = G / (1.01 ||G||_F + 1e-7),   X_{t+1} = a_t X_t + b_t X_t^3 + c_t X_t^5
//   (X^3 = (X X^T) X on the smaller side, as newton_schulz() does)
//
// but with a different (a_t, b_t, c_t) at every step: p_t is the odd quintic that best
// approximates 1 in the max norm on the interval [l_t, u_t] where the singular values lie after
// t steps (the Remez/equioscillation solution), starting from [1e-3, 1]. The composition is the
// optimal such polynomial method (the paper's Theorem 4.1), so singular values down to 1e-3 of
// the Frobenius norm reach [0.846, 1.124] after 5 steps and 1 to float64 precision after 8, where
// Jordan's fixed Newton-Schulz coefficients leave them in [0.47, 1.20] after 5 steps and never
// converge to 1 (their fixed band is about [0.68, 1.13]). tests/test_polar_methods.cpp checks
// these bands.
//
// Coefficients: the table of the authors' reference code (NoahAmsel/PolarExpress,
// polar_express/basic.py, commit 7f0fb57; the paper's Algorithm 1 prints the same numbers after
// the safety factor), eight steps; further steps repeat the last, (15/8, -10/8, 3/8). Its
// comment says optimal_composition(l=1e-3, cushion=0.02, safety 1e-2); the numbers themselves
// equioscillate for cushion 0.02407327424182761 with the interval recursion l_{t+1} = p_t(l_t),
// u_{t+1} = 2 - l_{t+1} run on the coefficients before the safety factor (tests check this), and
// that is what they are. Two stabilizers, both from the paper:
//   - the safety factor: every polynomial but the last is evaluated at x / 1.01, i.e.
//     (a, b, c) -> (a / 1.01, b / 1.01^3, c / 1.01^5), so singular values a little above the
//     assumed upper end (rounding in bf16) are not amplified;
//   - cushioning: where l_t < 0.024 u_t, p_t is fitted on [0.024 u_t, u_t] and rescaled so that
//     p(l_t) + p(u_t) = 2, which keeps the first steps from overshooting in low precision.
// The 1.01 in the normalization makes the largest singular value at most 1 / 1.01.
#pragma once

#include <ATen/ATen.h>

#include <array>
#include <optional>
#include <vector>

namespace lorascope {

using QuinticCoefficients = std::array<double, 3>;  // (a, b, c) of p(x) = a x + b x^3 + c x^5

// The reference table before the safety factor (see above), eight entries.
const std::vector<QuinticCoefficients>& polar_express_raw_coefficients();
// The coefficients the iteration applies at steps 0 .. steps-1 (safety factor included).
std::vector<QuinticCoefficients> polar_express_coefficients(int steps);

// compute_dtype: the dtype of the iteration; default bf16 on CUDA (as the paper and Muon run it)
// and G's own dtype on CPU. Returns G's dtype. Accepts a batch (..., rows, cols).
at::Tensor polar_express(const at::Tensor& G, int steps,
                         std::optional<at::ScalarType> compute_dtype = std::nullopt);

}  // namespace lorascope
