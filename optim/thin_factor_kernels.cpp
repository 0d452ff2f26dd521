#include "optim/thin_factor_kernels.h"

#include "optim/thin_factor_kernels_avx512.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <stdexcept>
#include <string>

// The vector helpers below are always inlined into their callers' target clones, so the ABI
// note GCC gives for passing 32- and 64-byte vectors does not apply.
#if defined(__clang__)
#pragma clang diagnostic ignored "-Wpsabi"
#elif defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

namespace lorascope {
namespace {

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define LORASCOPE_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#define LORASCOPE_INLINE inline __attribute__((always_inline))
#else
#define LORASCOPE_VECTOR_CLONES
#define LORASCOPE_INLINE inline
#endif

// GCC vector extensions: 8 lanes (one AVX-512 register of doubles, one AVX2 register of floats);
// each clone lowers them to its ISA.
typedef double v8d __attribute__((vector_size(64)));
typedef float v8f __attribute__((vector_size(32)));

LORASCOPE_INLINE v8f load8(const float* p) {
  v8f v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
LORASCOPE_INLINE void store8(float* p, v8f v) { std::memcpy(p, &v, sizeof v); }
LORASCOPE_INLINE v8d widen(v8f v) { return __builtin_convertvector(v, v8d); }
LORASCOPE_INLINE double lane_sum(v8d v) {
  return ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]));
}

std::atomic<bool> avx512_allowed{true};

bool use_avx512() { return avx512_allowed.load(std::memory_order_relaxed) && avx512::available(); }

constexpr int kBlock = 4;      // rows of the Gram matrix whose sums one pass keeps in registers
constexpr int64_t kChunk = 128;  // columns per block of the fused pass: g, m, d of it stay in L1

// total += X X^T over `count` columns of a column-major X (column j: R contiguous floats). One
// pass per block of 128 / R Gram rows a (16 vector sums, held in registers):
// sums[k][v] += x_j[a0 + k] * x_j[8 v .. 8 v + 7]; blocks left of the diagonal are skipped.
template <int R>
constexpr int column_rows_per_pass() {
  return 128 / R < R ? 128 / R : R;
}

template <int R>
LORASCOPE_INLINE void gram_columns(const float* x, int64_t count, double* total) {
  constexpr int V = R / 8, kRows = column_rows_per_pass<R>();
  for (int a0 = 0; a0 < R; a0 += kRows) {
    const int v0 = a0 / 8;  // vectors whose columns b all lie left of a0 are mirrored
    v8d sums[kRows][V] = {};
    for (int64_t j = 0; j < count; ++j) {
      const float* xj = x + j * R;
      v8d col[V];
      for (int v = v0; v < V; ++v) col[v] = widen(load8(xj + 8 * v));
      for (int k = 0; k < kRows; ++k) {
        const double xa = xj[a0 + k];
        for (int v = v0; v < V; ++v) sums[k][v] += xa * col[v];
      }
    }
    for (int k = 0; k < kRows; ++k) {
      for (int v = v0; v < V; ++v) {
        for (int l = 0; l < 8; ++l) total[(a0 + k) * R + 8 * v + l] += sums[k][v][l];
      }
    }
  }
}

// total += X X^T over `count` columns of a row-major X (row a at x + a * stride), upper 4 x 4
// blocks only: for each pair of 4-row blocks (b0 >= a0), 16 lane-wise sums of x_a * x_b, 8
// columns at a time, the lanes added at the end.
template <int R>
LORASCOPE_INLINE void gram_rows(const float* x, int64_t count, int64_t stride, double* total) {
  const int64_t body = count - count % 8;
  for (int a0 = 0; a0 < R; a0 += kBlock) {
    for (int b0 = a0; b0 < R; b0 += kBlock) {
      v8d sums[kBlock][kBlock] = {};
      for (int64_t j = 0; j < body; j += 8) {
        v8d xa[kBlock], xb[kBlock];
        for (int k = 0; k < kBlock; ++k) {
          xa[k] = widen(load8(x + (a0 + k) * stride + j));
          xb[k] = widen(load8(x + (b0 + k) * stride + j));
        }
        for (int k = 0; k < kBlock; ++k) {
          for (int l = 0; l < kBlock; ++l) sums[k][l] += xa[k] * xb[l];
        }
      }
      for (int k = 0; k < kBlock; ++k) {
        for (int l = 0; l < kBlock; ++l) {
          double sum = lane_sum(sums[k][l]);
          for (int64_t j = body; j < count; ++j) {
            sum += static_cast<double>(x[(a0 + k) * stride + j]) * static_cast<double>(x[(b0 + l) * stride + j]);
          }
          total[(a0 + k) * R + b0 + l] += sum;
        }
      }
    }
  }
}

// M <- G + mu M (M <- G when fresh) and, when d is given, D = G + mu M, over `count` elements.
LORASCOPE_INLINE void momentum_range(const float* g, float* m, float* d, float mu, bool fresh, int64_t count) {
  if (fresh) {
    for (int64_t i = 0; i < count; ++i) m[i] = g[i];
  } else {
    for (int64_t i = 0; i < count; ++i) m[i] = g[i] + mu * m[i];
  }
  if (d) {
    for (int64_t i = 0; i < count; ++i) d[i] = g[i] + mu * m[i];
  }
}

// The direction and its Gram matrix, block by block: the momentum arithmetic waits on memory,
// and the Gram matrix's float64 multiply-adds on the block it just wrote fill that time.
template <int R>
LORASCOPE_INLINE void direction_gram(const float* g, float* m, float* d, const ThinMomentum& mom, int64_t n,
                                     bool row_major, double* out) {
  double total[R * R] = {};
  const float* dir = !mom.enabled ? g : mom.nesterov ? d : m;
  float* nesterov_out = mom.enabled && mom.nesterov ? d : nullptr;
  for (int64_t c0 = 0; c0 < n; c0 += kChunk) {
    const int64_t count = std::min(kChunk, n - c0);
    if (row_major) {
      if (mom.enabled) {
        for (int a = 0; a < R; ++a) {
          const int64_t at = a * n + c0;
          momentum_range(g + at, m + at, nesterov_out ? nesterov_out + at : nullptr, mom.mu, mom.fresh, count);
        }
      }
      if (use_avx512()) {
        avx512::gram_rows<R>(dir + c0, count, n, total);
      } else {
        gram_rows<R>(dir + c0, count, n, total);
      }
    } else {
      const int64_t at = c0 * R;
      if (mom.enabled) {
        momentum_range(g + at, m + at, nesterov_out ? nesterov_out + at : nullptr, mom.mu, mom.fresh, count * R);
      }
      if (use_avx512()) {
        avx512::gram_columns<R>(dir + at, count, total);
      } else {
        gram_columns<R>(dir + at, count, total);
      }
    }
  }
  // Both kernels sum the blocks on and above the diagonal (column-major: 8-wide column blocks
  // from the row block's first column on); mirror the rest.
  for (int a = 0; a < R; ++a) {
    for (int b = 0; b < R; ++b) {
      const bool computed =
          row_major ? b / kBlock >= a / kBlock : b / 8 >= (a - a % column_rows_per_pass<R>()) / 8;
      out[a * R + b] = computed ? total[a * R + b] : total[b * R + a];
    }
  }
}

template <int R>
LORASCOPE_INLINE void decayed_update(float* w, const float* q, const float* x, int64_t n, bool row_major, float keep,
                                     float rate) {
  constexpr int V = R / 8;
  if (!row_major) {  // column j of W and X: R contiguous floats; w_j <- keep w_j - rate Q x_j
    v8f qcol[R][V];  // column b of Q
    for (int b = 0; b < R; ++b) {
      for (int v = 0; v < V; ++v) {
        for (int l = 0; l < 8; ++l) qcol[b][v][l] = q[(8 * v + l) * R + b];
      }
    }
    for (int64_t j = 0; j < n; ++j) {
      const float* xj = x + j * R;
      float* wj = w + j * R;
      v8f u[V] = {};
      for (int b = 0; b < R; ++b) {
        const float xb = xj[b];
        for (int v = 0; v < V; ++v) u[v] += xb * qcol[b][v];
      }
      for (int v = 0; v < V; ++v) store8(wj + 8 * v, keep * load8(wj + 8 * v) - rate * u[v]);
    }
    return;
  }
  const int64_t body = n - n % 8;  // row-major: 8 columns at a time, every row of Q
  for (int64_t j = 0; j < body; j += 8) {
    v8f xb[R];
    for (int b = 0; b < R; ++b) xb[b] = load8(x + b * n + j);
    for (int a = 0; a < R; ++a) {
      v8f u = {};
      for (int b = 0; b < R; ++b) u += q[a * R + b] * xb[b];
      float* wa = w + a * n + j;
      store8(wa, keep * load8(wa) - rate * u);
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

#define LORASCOPE_THIN_KERNELS(R)                                                                           \
  LORASCOPE_VECTOR_CLONES void direction_gram_##R(const float* g, float* m, float* d, const ThinMomentum& mom, \
                                                  int64_t n, bool row_major, double* out) {                   \
    direction_gram<R>(g, m, d, mom, n, row_major, out);                                                       \
  }                                                                                                         \
  LORASCOPE_VECTOR_CLONES void update_##R(float* w, const float* q, const float* x, int64_t n, bool row_major, \
                                          float keep, float rate) {                                         \
    decayed_update<R>(w, q, x, n, row_major, keep, rate);                                                   \
  }
LORASCOPE_THIN_KERNELS(8)
LORASCOPE_THIN_KERNELS(16)
LORASCOPE_THIN_KERNELS(32)
#undef LORASCOPE_THIN_KERNELS

[[noreturn]] void unsupported(int64_t r) {
  throw std::invalid_argument("thin_factor_kernels: rank " + std::to_string(r) + " is not one of 8, 16, 32");
}

}  // namespace

void thin_factor_kernels_allow_avx512(bool allowed) { avx512_allowed.store(allowed); }

bool thin_factor_kernels_support(int64_t r) { return r == 8 || r == 16 || r == 32; }

void thin_direction_gram(const float* g, float* m, float* d, const ThinMomentum& momentum, int64_t r, int64_t n,
                         bool row_major, double* gram) {
  switch (r) {
    case 8: return direction_gram_8(g, m, d, momentum, n, row_major, gram);
    case 16: return direction_gram_16(g, m, d, momentum, n, row_major, gram);
    case 32: return direction_gram_32(g, m, d, momentum, n, row_major, gram);
    default: unsupported(r);
  }
}

void thin_decayed_update(float* w, const float* q, const float* x, int64_t r, int64_t n, bool row_major, float keep,
                         float rate) {
  switch (r) {
    case 8: return update_8(w, q, x, n, row_major, keep, rate);
    case 16:
      return use_avx512() ? avx512::decayed_update<16>(w, q, x, n, row_major, keep, rate)
                                 : update_16(w, q, x, n, row_major, keep, rate);
    case 32:
      return use_avx512() ? avx512::decayed_update<32>(w, q, x, n, row_major, keep, rate)
                                 : update_32(w, q, x, n, row_major, keep, rate);
    default: unsupported(r);
  }
}

}  // namespace lorascope
