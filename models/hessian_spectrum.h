// Top of a symmetric operator's spectrum from matrix-vector products alone: the sharpness
// ||Hess f||_2 of Definition 1 (deep-mf-edge-of-stability.md) without forming the Hessian.
//   lanczos_top_k: Lanczos with full reorthogonalisation, the k largest Ritz values (descending).
//   power_top:     power iteration, the eigenvalue of largest magnitude (the Hessians here are
//                  PSD at minima; in the 2-cycle they can have small negative values).
//   dense_from_products: the full matrix column by column, the reference for tiny problems.
#pragma once

#include "util/eigen.h"

#include <cstdint>
#include <functional>
#include <vector>

namespace lorascope {

using MatVec = std::function<Eigen::VectorXd(const Eigen::VectorXd&)>;

// iters is capped at n; tol stops once the top-k Ritz values move less than tol (relative).
std::vector<double> lanczos_top_k(const MatVec& op, int64_t n, int k, int iters, uint64_t seed,
                                  double tol = 1e-12);
double power_top(const MatVec& op, int64_t n, int iters, uint64_t seed, double tol = 1e-12);
Eigen::MatrixXd dense_from_products(const MatVec& op, int64_t n);

}  // namespace lorascope
