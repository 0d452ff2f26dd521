// Newton-Schulz through the Gram matrix, for thin CPU matrices (LoRA's r x n factors).
//
// Every iterate of the quintic X <- a X + (b A + c A^2) X, A = X X^T, is X_k = Q_k X_0 with an
// r x r polynomial Q_k in G = X_0 X_0^T, so A_k = Q_k G Q_k^T and Q_{k+1} = (a I + b A_k + c A_k^2) Q_k:
// only the Gram matrix and the final Q X touch the long side (4 r^2 n flops instead of 4 r^2 n per
// iteration; the r x r iteration runs in float64). Same iteration as the direct form in exact
// arithmetic. In float32, accumulating Q over all five steps loses up to two digits on
// ill-conditioned input (G squares the condition number, and Q amplifies the small directions
// about 3.4x per step): the iterate is formed once more after step 2, which brings the error back
// to the direct form's (OrthogonalizeTest checks both against the float64 iteration).
#pragma once

#include <ATen/ATen.h>

namespace lorascope {

// True for a contiguous CPU float32/float64 matrix whose short side is <= 64, whose long side is
// >= 4x the short one, and which is large enough (>= 4096 entries) that the long-side passes, not
// ATen's per-call overhead, decide its cost.
bool gram_newton_schulz_applies(const at::Tensor& M);

// From an accurate Gram matrix (gram = X X^T, r x r, row-major, float64): Q with
// NS_steps(X) = Q X (r x r, row-major, float64), every iteration accumulated in Q. Needs no
// restart when the Gram matrix carries float64 accuracy (thin_direction_gram of thin_factor_kernels.h).
void gram_newton_schulz_polynomial(const double* gram, int64_t r, int steps, double eps, double* q);

// NewtonSchulz_steps(M) written into out (M's shape, dtype, contiguous).
void gram_newton_schulz(const at::Tensor& M, int steps, double eps, at::Tensor& out);

}  // namespace lorascope
