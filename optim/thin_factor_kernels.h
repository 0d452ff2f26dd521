// Kernels of Muon's fused step on a thin float32 LoRA factor, seen as an r x n matrix X (r <= n):
// row-major for a wide r x n factor (A), column-major for the transpose of a tall n x r one (B).
//
// OpenBLAS runs these shapes (r = 16, n = 8192) at a fraction of its peak and zeroes every
// output first; here the Gram matrix is one pass over X with its sums held in registers, and
// Q X goes straight into the decayed update of W without an intermediate. Specialised for r in
// {8, 16, 32}.
#pragma once

#include <cstdint>

namespace lorascope {

// Where the CPU has AVX-512 the inner loops run as intrinsics (thin_factor_kernels_avx512.h),
// else as the portable code. false makes every CPU take the portable code (tests compare both).
void thin_factor_kernels_allow_avx512(bool allowed);

// True for the ranks these kernels are compiled for.
bool thin_factor_kernels_support(int64_t r);

// Muon's direction D and its Gram matrix gram = D D^T (r x r, row-major) in one pass over the
// long side, block by block, every product and sum in float64: the Newton-Schulz polynomial needs
// that accuracy (a float32 Gram matrix loses the small directions of an ill-conditioned D).
// Without momentum D = G (m, d unused). With momentum M <- G + mu M (M <- G when fresh) and
// D = M, or for Nesterov D = G + mu M written to d (X's layout, not overlapping).
struct ThinMomentum {
  bool enabled = false, nesterov = false, fresh = false;
  float mu = 0;
};
void thin_direction_gram(const float* g, float* m, float* d, const ThinMomentum& momentum, int64_t r, int64_t n,
                         bool row_major, double* gram);

// W <- keep W - rate Q X for Q (r x r, row-major); W has X's layout and must not overlap it.
void thin_decayed_update(float* w, const float* q, const float* x, int64_t r, int64_t n, bool row_major, float keep,
                         float rate);

}  // namespace lorascope
