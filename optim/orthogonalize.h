// Orthogonalizers: maps from a gradient-like matrix M (rows x cols) to a matrix with the same
// singular vectors and flattened singular values. Muon / SpecGD apply one to each update.
//
//   exact      T(M)      = U V^T                      muon-lora-uniform-growth.md eq. (5)
//   smoothed   T_beta(M) = (M M^T + beta I)^(-1/2) M   eq. (6): singular values s -> s / sqrt(s^2 + beta)
//   newton_schulz: quintic iteration X <- a X + (b A + c A^2) X, A = X X^T, (a,b,c) =
//              (3.4445, -4.7750, 2.0315) after Frobenius normalisation (KellerJordan/Muon). It does
//              NOT compute U V^T: it maps singular values of well-conditioned input into roughly
//              [0.68, 1.13], which is enough for an optimizer and far cheaper than an SVD.
//   thin_exact exact T through the r x r Gram matrix of the thin side (thin_polar.h): U V^T at
//              below Newton-Schulz cost for LoRA factors
//   polar_express  Newton-Schulz with the per-step minimax coefficients of Amsel et al. 2025
//              (polar_express.h); ns_steps iterations
//
// All three accept a 2-D matrix or a batch (..., rows, cols) and keep the dtype and device of M.
// exact/smoothed treat singular values below rows*cols-scaled machine epsilon as zero, so
// rank-deficient input maps to a partial isometry (zero singular values stay zero).
#pragma once

#include <ATen/ATen.h>

#include <string>

namespace lorascope {

enum class OrthoKind { Exact, Smoothed, NewtonSchulz, ThinExact, PolarExpress };

struct OrthoOptions {
  OrthoKind kind = OrthoKind::Exact;
  double beta = 0.0;   // smoothing of T_beta; beta = 0 makes Smoothed identical to Exact
  int ns_steps = 5;    // Newton-Schulz / Polar Express iterations
  double ns_eps = 1e-7;  // guards the Frobenius normalisation of an all-zero matrix
};

// Parses "exact" | "smoothed" | "newton_schulz" | "thin_exact" | "polar_express"; throws std::invalid_argument otherwise.
OrthoKind parse_ortho_kind(const std::string& name);
std::string to_string(OrthoKind kind);

at::Tensor orthogonalize(const at::Tensor& M, const OrthoOptions& options);

// Reference paths (float64-safe, SVD based); orthogonalize() may route small CPU matrices to the
// Eigen kernels in small_matrix.h, which tests check against these.
at::Tensor orthogonalize_exact(const at::Tensor& M);
at::Tensor orthogonalize_smoothed(const at::Tensor& M, double beta);
// Runs in bf16 on CUDA (as Muon does) and in M's own dtype on CPU; returns M's dtype.
at::Tensor newton_schulz(const at::Tensor& M, int steps, double eps = 1e-7);

// Threshold below which a singular value counts as zero, relative to the largest one.
double zero_sv_tolerance(int64_t rows, int64_t cols, at::ScalarType dtype);

}  // namespace lorascope
