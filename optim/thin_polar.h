// Exact orthogonalization of a thin matrix through its small Gram matrix: for an r x n update G
// (r <= n; an m x r one is transposed first)
//
//   T(G) = (G G^T)^(-1/2) G = U V^T          muon-lora-uniform-growth.md eq. (5)
//
// with (G G^T)^(-1/2) = Q diag(lambda^(-1/2)) Q^T from a symmetric eigendecomposition of the
// r x r Gram matrix, formed and decomposed in float64. Cost: 2 r^2 n (Gram) + O(r^3) (eigh) +
// 2 r^2 n (product), against 5 x (4 r^2 n + 2 r^3) for the quintic Newton-Schulz and
// O(r^2 n) with a much larger constant for an SVD: exact SpecGD on LoRA factors (r = 8..64) at
// below Newton-Schulz cost (bench/orthogonalize_bench.cpp).
//
// Guard for tiny eigenvalues: lambda_i <= thin_polar_tolerance(...) * lambda_max counts as zero
// and gets weight 0 instead of lambda^(-1/2). Rank-deficient G therefore maps to the polar factor
// on its range, U_k V_k^T over the k kept singular pairs (a partial isometry; zero singular values
// stay zero), as orthogonalize_exact() does. The tolerance is the larger of
//   - (zero_sv_tolerance(rows, cols, dtype))^2: the same rank decision as the SVD path for
//     float32/bf16 input (sigma_i / sigma_1 <= max(m, n) eps_dtype), and
//   - n * eps64: what a float64 Gram matrix can resolve (forming G G^T squares the condition
//     number), so float64 input with sigma_i / sigma_1 below ~sqrt(n eps64) (1e-6 at n = 4096) is
//     treated as rank-deficient where the SVD path would still normalise it. Kept directions are
//     accurate to about n eps64 (sigma_1 / sigma_i)^2.
// Zero input gives zero output. Accepts a batch (..., rows, cols); returns G's dtype and device.
#pragma once

#include <ATen/ATen.h>

namespace lorascope {

at::Tensor orthogonalize_thin(const at::Tensor& G);

// Relative eigenvalue threshold of the Gram matrix (see above).
double thin_polar_tolerance(int64_t rows, int64_t cols, at::ScalarType dtype);

}  // namespace lorascope
