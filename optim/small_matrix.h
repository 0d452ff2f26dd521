// Eigen kernels for the small CPU matrices of the matrix-factorization studies (e.g. 60 x 5).
// At these sizes ATen's per-op dispatch (several microseconds) costs more than the arithmetic,
// so the hot loop maps tensor memory into Eigen and works in place. Each kernel has an ATen
// reference in orthogonalize.cpp / spectral_stats.cpp that the tests compare it with.
#pragma once

#include <ATen/ATen.h>

namespace lorascope::small {

// True when M is a contiguous CPU float32/float64 2-D matrix whose smaller side is at most
// max_small_side: the case where these kernels beat ATen.
bool eligible(const at::Tensor& M, int64_t max_small_side = 64);

// out = U f(S) V^T with f(s) = s / sqrt(s^2 + beta) for s above the zero tolerance, else 0.
// beta = 0 gives the exact polar factor U V^T. out must have M's shape, dtype and be contiguous.
// Allocates nothing once a shape has been seen (per-thread workspaces).
void spectral_map(const at::Tensor& M, double beta, at::Tensor& out);

// p <- decay * p + alpha * U f(S) V^T of M, without the intermediate tensor: the SpecGD step
// (Muon with momentum 0, lr_scale and weight decay folded into alpha and decay). p must be
// contiguous, with M's shape and dtype.
void add_spectral_map(const at::Tensor& M, double beta, double decay, double alpha, at::Tensor& p);

// Newton-Schulz quintic on the smaller side, in M's dtype.
void newton_schulz(const at::Tensor& M, int steps, double eps, at::Tensor& out);

// EIGEN_MAX_ALIGN_BYTES as this library was compiled: Eigen allocates and frees with it, so a
// binary whose files disagree on it frees memory with the wrong routine (tests compare it with
// their own; see the -march comment in CMakeLists.txt).
int eigen_max_align_bytes();

}  // namespace lorascope::small
