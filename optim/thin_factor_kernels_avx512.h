// AVX-512 versions of the thin-factor kernels' inner loops (thin_factor_kernels.cpp), written with
// intrinsics: GCC's vector extensions split the float-to-double widening into four instructions
// and kept the sums on the stack (13 ns per column of a 16-row Gram matrix, as slow as OpenBLAS).
// Compiled for AVX-512 whatever the build's flags; called only when the CPU has it.
#pragma once

#include <cstdint>

namespace lorascope::avx512 {

// True when the running CPU has AVX-512F (and so the AVX2/FMA these functions also use).
bool available();

// total (R x R, row-major) += X X^T over `count` columns of a column-major X (column j: R
// contiguous floats), all in float64; only the 8-wide column blocks from each 128/R-row block's
// first column on are summed (the caller mirrors the rest). R in {8, 16, 32}.
template <int R>
void gram_columns(const float* x, int64_t count, double* total);

// The same for a row-major X (row a at x + a * stride): the 4 x 4 blocks on and above the diagonal.
template <int R>
void gram_rows(const float* x, int64_t count, int64_t stride, double* total);

// W <- keep W - rate Q X over n columns (Q: R x R row-major; W, X: column-major, or row-major with
// n columns). R in {16, 32}.
template <int R>
void decayed_update(float* w, const float* q, const float* x, int64_t n, bool row_major, float keep, float rate);

}  // namespace lorascope::avx512
