// Angles and similarities between linear subspaces, each given by a matrix with orthonormal
// columns (float64, any device).
//
// Principal angles (Bjorck & Golub 1973) 0 <= theta_1 <= ... <= theta_q <= pi/2, q = min(a, b),
// between span(Q1) (m x a) and span(Q2) (m x b): cos theta_i are the singular values of Q1^T Q2.
// arccos loses half the digits near 0 (an angle of 1e-9 reads as 0), so, as in Knyazev &
// Argentati 2002 (SIAM J. Sci. Comput. 23(6), Alg. 3.1), angles below pi/4 come from their sines,
// the singular values of (I - Q1 Q1^T) Q2 (with a >= b), and the others from their cosines.
#pragma once

#include <ATen/ATen.h>

namespace lorascope {

// Radians, ascending; min(a, b) values (none when either basis has no columns).
at::Tensor principal_angles(const at::Tensor& Q1, const at::Tensor& Q2);

// Normalized Grassmann similarity, the LoRA paper's subspace similarity (Hu et al. 2021, §7.2):
// phi = ||Q1^T Q2||_F^2 / min(a, b) = mean cos^2 theta_i, in [0, 1]; 1 when one space contains the
// other, about max(a, b) / m for random subspaces.
double grassmann_similarity(const at::Tensor& Q1, const at::Tensor& Q2);

// phi(i, j) = ||Q1[:, :i]^T Q2[:, :j]||_F^2 / min(i, j) for i = 1..a, j = 1..b (the heat map of
// the LoRA paper's Fig. 3): an (a, b) float64 CPU tensor, entry [i-1][j-1].
at::Tensor grassmann_similarity_grid(const at::Tensor& Q1, const at::Tensor& Q2);

// An orthonormal basis of span(M)'s numerically nonzero part: the left singular vectors of M
// whose singular values exceed rtol * sigma_1 (none when M is zero). (m, rank).
at::Tensor orthonormal_range(const at::Tensor& M, double rtol);

}  // namespace lorascope
