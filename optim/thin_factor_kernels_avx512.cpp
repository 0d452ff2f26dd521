#include "optim/thin_factor_kernels_avx512.h"

#include "util/cpu_features.h"

#include <utility>

// The ranks the callers use, for the real kernels and for the stubs alike.
#define LORASCOPE_INSTANTIATE_THIN_KERNELS                                                           \
  template void gram_columns<8>(const float*, int64_t, double*);                                     \
  template void gram_columns<16>(const float*, int64_t, double*);                                    \
  template void gram_columns<32>(const float*, int64_t, double*);                                    \
  template void gram_rows<8>(const float*, int64_t, int64_t, double*);                               \
  template void gram_rows<16>(const float*, int64_t, int64_t, double*);                              \
  template void gram_rows<32>(const float*, int64_t, int64_t, double*);                              \
  template void decayed_update<16>(float*, const float*, const float*, int64_t, bool, float, float); \
  template void decayed_update<32>(float*, const float*, const float*, int64_t, bool, float, float);


#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
// Everything below is compiled for AVX-512 (a target attribute on the templates alone does not
// reach the intrinsics GCC inlines into them).
#pragma GCC push_options
#pragma GCC target("avx512f,avx2,fma")
#pragma GCC diagnostic ignored "-Wpsabi"
// GCC 12's AVX-512 intrinsics trip -Wmaybe-uninitialized inside <avx512fintrin.h> (GCC bug
// 105593; see util/eigen.h).
// Off for the whole file, not just around the include: GCC reports them where the intrinsics are
// inlined into these kernels (seen in the C++20 build against LibTorch 2.15).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

namespace lorascope::avx512 {

bool available() { return cpu_has_avx512(); }

template <int R>
constexpr int rows_per_pass() {
  return 128 / R < R ? 128 / R : R;  // 16 vector sums per pass
}

// One pass over the columns for Gram rows A0 .. A0 + rows_per_pass - 1; every bound a
// compile-time constant so that the sums live in registers.
template <int R, int A0>
inline void gram_columns_pass(const float* x, int64_t count, double* total) {
  constexpr int V = R / 8, kRows = rows_per_pass<R>(), V0 = A0 / 8, W = V - V0;
  __m512d sums[kRows][W];
#pragma GCC unroll 16
  for (int k = 0; k < kRows; ++k) {
#pragma GCC unroll 4
    for (int w = 0; w < W; ++w) sums[k][w] = _mm512_setzero_pd();
  }
  for (int64_t j = 0; j < count; ++j) {
    const float* xj = x + j * R;
    __m512d col[W];
#pragma GCC unroll 4
    for (int w = 0; w < W; ++w) col[w] = _mm512_cvtps_pd(_mm256_loadu_ps(xj + 8 * (V0 + w)));
#pragma GCC unroll 16
    for (int k = 0; k < kRows; ++k) {
      // x_j[A0 + k], broadcast from the vector that holds it
      const __m512d xa = _mm512_permutexvar_pd(_mm512_set1_epi64((A0 + k) % 8), col[(A0 + k) / 8 - V0]);
#pragma GCC unroll 4
      for (int w = 0; w < W; ++w) sums[k][w] = _mm512_fmadd_pd(xa, col[w], sums[k][w]);
    }
  }
  for (int k = 0; k < kRows; ++k) {
    for (int w = 0; w < W; ++w) {
      double* t = total + (A0 + k) * R + 8 * (V0 + w);
      _mm512_storeu_pd(t, _mm512_add_pd(_mm512_loadu_pd(t), sums[k][w]));
    }
  }
}

template <int R, int... P>
inline void gram_columns_passes(const float* x, int64_t count, double* total, std::integer_sequence<int, P...>) {
  (gram_columns_pass<R, P * rows_per_pass<R>()>(x, count, total), ...);
}

template <int R>
void gram_columns(const float* x, int64_t count, double* total) {
  gram_columns_passes<R>(x, count, total, std::make_integer_sequence<int, R / rows_per_pass<R>()>{});
}

template <int R>
void gram_rows(const float* x, int64_t count, int64_t stride, double* total) {
  constexpr int kBlock = 4;
  const int64_t body = count - count % 8;
  for (int a0 = 0; a0 < R; a0 += kBlock) {
    for (int b0 = a0; b0 < R; b0 += kBlock) {
      __m512d sums[kBlock][kBlock];
      for (int k = 0; k < kBlock; ++k) {
        for (int l = 0; l < kBlock; ++l) sums[k][l] = _mm512_setzero_pd();
      }
      for (int64_t j = 0; j < body; j += 8) {
        __m512d xa[kBlock], xb[kBlock];
        for (int k = 0; k < kBlock; ++k) {
          xa[k] = _mm512_cvtps_pd(_mm256_loadu_ps(x + (a0 + k) * stride + j));
          xb[k] = _mm512_cvtps_pd(_mm256_loadu_ps(x + (b0 + k) * stride + j));
        }
        for (int k = 0; k < kBlock; ++k) {
          for (int l = 0; l < kBlock; ++l) sums[k][l] = _mm512_fmadd_pd(xa[k], xb[l], sums[k][l]);
        }
      }
      for (int k = 0; k < kBlock; ++k) {
        for (int l = 0; l < kBlock; ++l) {
          double sum = _mm512_reduce_add_pd(sums[k][l]);
          for (int64_t j = body; j < count; ++j) {
            sum += static_cast<double>(x[(a0 + k) * stride + j]) * static_cast<double>(x[(b0 + l) * stride + j]);
          }
          total[(a0 + k) * R + b0 + l] += sum;
        }
      }
    }
  }
}

template <int R>
void decayed_update(float* w, const float* q, const float* x, int64_t n, bool row_major, float keep,
                                     float rate) {
  static_assert(R % 16 == 0, "one or more AVX-512 registers of floats per column");
  const __m512 k = _mm512_set1_ps(keep), s = _mm512_set1_ps(rate);
  if (!row_major) {  // column j: R contiguous floats; w_j <- keep w_j - rate Q x_j
    constexpr int V = R / 16;
    alignas(64) float qcol[R][R];  // qcol[b] = column b of Q
    for (int a = 0; a < R; ++a) {
      for (int b = 0; b < R; ++b) qcol[b][a] = q[a * R + b];
    }
    for (int64_t j = 0; j < n; ++j) {
      const float* xj = x + j * R;
      float* wj = w + j * R;
      __m512 u[V];
      for (int v = 0; v < V; ++v) u[v] = _mm512_setzero_ps();
      for (int b = 0; b < R; ++b) {
        const __m512 xb = _mm512_set1_ps(xj[b]);
        for (int v = 0; v < V; ++v) u[v] = _mm512_fmadd_ps(xb, _mm512_load_ps(qcol[b] + 16 * v), u[v]);
      }
      for (int v = 0; v < V; ++v) {
        const __m512 wv = _mm512_loadu_ps(wj + 16 * v);
        _mm512_storeu_ps(wj + 16 * v, _mm512_fnmadd_ps(s, u[v], _mm512_mul_ps(k, wv)));
      }
    }
    return;
  }
  const int64_t body = n - n % 16;  // row-major: 16 columns at a time
  for (int64_t j = 0; j < body; j += 16) {
    __m512 xb[R];
    for (int b = 0; b < R; ++b) xb[b] = _mm512_loadu_ps(x + b * n + j);
    for (int a = 0; a < R; ++a) {
      __m512 u = _mm512_setzero_ps();
      for (int b = 0; b < R; ++b) u = _mm512_fmadd_ps(_mm512_set1_ps(q[a * R + b]), xb[b], u);
      float* wa = w + a * n + j;
      _mm512_storeu_ps(wa, _mm512_fnmadd_ps(s, u, _mm512_mul_ps(k, _mm512_loadu_ps(wa))));
    }
  }
  for (int a = 0; a < R; ++a) {
    for (int64_t j = body; j < n; ++j) {
      float u = 0;
      for (int b = 0; b < R; ++b) u += q[a * R + b] * x[b * n + j];
      w[a * n + j] = keep * w[a * n + j] - rate * u;
    }
  }
}

LORASCOPE_INSTANTIATE_THIN_KERNELS

}  // namespace lorascope::avx512

#pragma GCC pop_options

#else  // not GCC on x86-64: never available, so never called

namespace lorascope::avx512 {
bool available() { return false; }
template <int R>
void gram_columns(const float*, int64_t, double*) {}
template <int R>
void gram_rows(const float*, int64_t, int64_t, double*) {}
template <int R>
void decayed_update(float*, const float*, const float*, int64_t, bool, float, float) {}
LORASCOPE_INSTANTIATE_THIN_KERNELS
}  // namespace lorascope::avx512

#endif
