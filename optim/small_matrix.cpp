#include "optim/small_matrix.h"

#include "util/eigen.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "optim/orthogonalize.h"

namespace lorascope::small {
namespace {

template <typename T>
using RowMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <typename T>
using Mat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>;
template <typename T>
using VecMap = Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, 1>>;
template <typename T>
using ConstVecMap = Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, 1>>;

// Buffers reused from call to call (per thread): once a shape has been seen, spectral_map
// allocates nothing. All matrices column-major.
template <typename T>
struct Workspace {
  std::vector<T> x;    // (m, k): M in tall orientation, then its Householder QR
  std::vector<T> tau;  // (k): reflector coefficients
  std::vector<T> xc;   // (k, k): R V, the columns made orthogonal by one-sided Jacobi
  std::vector<T> vc;   // (k, k): V, the accumulated rotations
  std::vector<T> c;    // (k, k): C = U_R f(S) V_R^T
  std::vector<T> norms, coef;  // (k): ||x_i|| and f(s_i) / ||x_i||
  std::vector<T> z;    // (m, k): [C; 0], then Q [C; 0] = T(M) (tall orientation)
};
template <typename T>
Workspace<T>& workspace() {
  thread_local Workspace<T> w;
  return w;
}

// y <- H y = y - tau v (v^T y) for a column y of length m, v = (1, v[j+1..m-1]) from row j on.
template <typename T>
inline void apply_reflector(const T* v, T tau, int64_t j, int64_t m, T* y) {
  const ConstVecMap<T> vt(v + j + 1, m - j - 1);
  VecMap<T> yt(y + j + 1, m - j - 1);
  const T w = tau * (y[j] + vt.dot(yt));
  y[j] -= w;
  yt -= w * vt;
}

// Householder QR of the m x k matrix x (m >= k) in place, as LAPACK's geqr2 and Eigen's
// householder_qr_inplace_unblocked: R on and above the diagonal, below it the essential parts of
// v_j in H_j = I - tau_j v_j v_j^T (v_j(j) = 1), Q = H_0 H_1 ... H_{k-1}.
template <typename T>
void householder_qr(T* x, int64_t m, int64_t k, T* tau) {
  for (int64_t j = 0; j < k; ++j) {
    T* v = x + j * m;
    VecMap<T> vt(v + j + 1, m - j - 1);
    const T c0 = v[j];
    const T tail = vt.squaredNorm();
    if (tail <= std::numeric_limits<T>::min()) {  // nothing below the diagonal: H_j = I
      tau[j] = 0;
      continue;
    }
    T beta = std::sqrt(c0 * c0 + tail);
    if (c0 >= T(0)) beta = -beta;
    vt *= T(1) / (c0 - beta);
    tau[j] = (beta - c0) / beta;
    v[j] = beta;
    for (int64_t col = j + 1; col < k; ++col) apply_reflector(v, tau[j], j, m, x + col * m);
  }
}

// z <- Q z = H_0 ... H_{k-1} z for the m x k matrix z, Q from householder_qr.
template <typename T>
void apply_q(const T* x, const T* tau, int64_t m, int64_t k, T* z) {
  for (int64_t j = k - 1; j >= 0; --j) {
    if (tau[j] == T(0)) continue;
    for (int64_t col = 0; col < k; ++col) apply_reflector(x + j * m, tau[j], j, m, z + col * m);
  }
}

template <typename T>
T dot(const T* a, const T* b, int64_t n) {
  T s = 0;
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

// Sweeps of one-sided Jacobi before giving up; cyclic Jacobi converges quadratically, and
// k <= 64 matrices take well under 20 (LAPACK's dgesvj allows 30).
constexpr int kMaxSweeps = 60;

// c = U f(S) V^T (k x k, leading dimension k) for the upper-triangular k x k matrix R in the
// top of x (leading dimension ld). f as in spectral_map; the zero tolerance is relative to the
// largest singular value, which R shares with M.
//
// One-sided (Hestenes) Jacobi: plane rotations from the right make the columns of X = R V
// mutually orthogonal, so X = U S with S the column norms and R = U S V^T. It is backward
// stable with high relative accuracy (Demmel & Veselic 1992, the algorithm of LAPACK's dgesvj)
// and, at k = 5, a few hundred flops a sweep, without the overheads of a general SVD.
template <typename T>
void core_map(const T* r, int64_t ld, int64_t k, T tol_factor, double beta, Workspace<T>& w, T* c) {
  const auto kk = static_cast<size_t>(k * k);
  w.xc.assign(kk, T(0));
  w.vc.assign(kk, T(0));
  w.norms.resize(static_cast<size_t>(k));
  w.coef.resize(static_cast<size_t>(k));
  T* x = w.xc.data();
  T* v = w.vc.data();
  // Scale by a power of two (exact) so that squared column norms neither overflow nor underflow.
  T amax = 0;
  bool finite = true;
  for (int64_t j = 0; j < k; ++j) {
    for (int64_t i = 0; i <= j; ++i) {
      const T a = std::abs(r[i + j * ld]);
      finite = finite && std::isfinite(a);
      amax = std::max(amax, a);
    }
  }
  if (!finite) {  // NaN or Inf in M: say so in the result instead of iterating on it
    std::fill(c, c + kk, std::numeric_limits<T>::quiet_NaN());
    return;
  }
  if (amax == T(0)) {  // M = 0: T(M) = 0
    std::fill(c, c + kk, T(0));
    return;
  }
  int e = 0;
  std::frexp(amax, &e);
  for (int64_t j = 0; j < k; ++j) {
    for (int64_t i = 0; i <= j; ++i) x[i + j * k] = std::ldexp(r[i + j * ld], -e);
    v[j + j * k] = T(1);
  }
  // A pair counts as orthogonal when |x_p . x_q| <= tol ||x_p|| ||x_q||, tol = sqrt(k) eps as in
  // dgesvj: the columns of U come out orthogonal to about that, as LAPACK's SVD gives them.
  const T tol = std::sqrt(static_cast<T>(k)) * std::numeric_limits<T>::epsilon();
  T* d = w.norms.data();  // squared column norms, kept up to date through the rotations
  for (int sweep = 0; sweep < kMaxSweeps; ++sweep) {
    for (int64_t i = 0; i < k; ++i) d[i] = dot(x + i * k, x + i * k, k);
    bool rotated = false;
    for (int64_t p = 0; p + 1 < k; ++p) {
      for (int64_t q = p + 1; q < k; ++q) {
        T* xp = x + p * k;
        T* xq = x + q * k;
        const T a = d[p], b = d[q], g = dot(xp, xq, k);
        if (!(std::abs(g) > tol * std::sqrt(a) * std::sqrt(b))) continue;
        rotated = true;
        // The rotation that zeroes the (p, q) entry of X^T X (LAPACK dgesvj, Rutishauser):
        // t = tan(theta), the root of t^2 + 2 zeta t - 1 = 0 of smaller magnitude.
        const T zeta = (b - a) / (T(2) * g);
        const T az = std::abs(zeta);
        T t = az > T(1) / std::sqrt(std::numeric_limits<T>::epsilon())
                  ? T(0.5) / az  // 1 + zeta^2 == zeta^2 in T; also keeps zeta^2 from overflowing
                  : T(1) / (az + std::sqrt(T(1) + zeta * zeta));
        if (zeta < T(0)) t = -t;
        const T cs = T(1) / std::sqrt(T(1) + t * t), sn = cs * t;
        T* vp = v + p * k;
        T* vq = v + q * k;
        for (int64_t i = 0; i < k; ++i) {
          const T x0 = xp[i], x1 = xq[i];
          xp[i] = cs * x0 - sn * x1;
          xq[i] = sn * x0 + cs * x1;
          const T v0 = vp[i], v1 = vq[i];
          vp[i] = cs * v0 - sn * v1;
          vq[i] = sn * v0 + cs * v1;
        }
        // ||x_p||^2 - t g and ||x_q||^2 + t g; recomputed where the update cancels.
        d[p] = a - t * g;
        d[q] = b + t * g;
        if (!(d[p] > T(0.25) * a)) d[p] = dot(xp, xp, k);
        if (!(d[q] > T(0.25) * b)) d[q] = dot(xq, xq, k);
      }
    }
    if (!rotated) break;
  }
  // s_i = ||x_i|| 2^e; u_i = x_i / ||x_i||; C = sum_i f(s_i) u_i v_i^T.
  T* norms = w.norms.data();
  T* coef = w.coef.data();  // f(s_i) / ||x_i||
  T s_max = 0;
  for (int64_t i = 0; i < k; ++i) {
    norms[i] = std::sqrt(dot(x + i * k, x + i * k, k));
    s_max = std::max(s_max, std::ldexp(norms[i], e));
  }
  const T tol0 = tol_factor * s_max;
  for (int64_t i = 0; i < k; ++i) {
    const T s = std::ldexp(norms[i], e);
    const bool keep = s > tol0 && s > T(0);
    // beta = 0: f(s) = s / sqrt(s^2) = 1, which the formula would miss where s^2 underflows.
    const T f = !keep ? T(0) : beta == 0.0 ? T(1) : s / std::sqrt(s * s + static_cast<T>(beta));
    coef[i] = keep ? f / norms[i] : T(0);
  }
  for (int64_t b = 0; b < k; ++b) {
    for (int64_t a = 0; a < k; ++a) {
      T acc = 0;
      for (int64_t i = 0; i < k; ++i) acc += x[a + i * k] * coef[i] * v[b + i * k];
      c[a + b * k] = acc;
    }
  }
}

// Writes T(M) = U f(S) V^T of the row-major rows x cols matrix m into the workspace's z, in the
// tall orientation (max(rows, cols) x min(rows, cols)); returns whether M is tall.
//
// Tall orientation M = Q R (Householder), then an SVD of the k x k triangle R:
// M = (Q U_R) S V_R^T, so T(M) = Q [U_R f(S) V_R^T; 0]. Both steps are backward stable (unlike
// an eigen-decomposition of M^T M, which squares the condition number), and the SVD only sees a
// k x k matrix.
template <typename T>
bool spectral_map_tall(const T* m, int64_t rows, int64_t cols, double beta, at::ScalarType dtype,
                       Workspace<T>& w) {
  const bool tall = rows >= cols;
  const int64_t mt = std::max(rows, cols), k = std::min(rows, cols);
  w.x.resize(static_cast<size_t>(mt * k));
  w.tau.resize(static_cast<size_t>(k));
  w.z.assign(static_cast<size_t>(mt * k), T(0));
  T* x = w.x.data();
  if (tall) {  // row-major rows x k into column-major: a transposing copy
    for (int64_t i = 0; i < rows; ++i) {
      for (int64_t j = 0; j < k; ++j) x[i + j * mt] = m[i * cols + j];
    }
  } else {  // row-major k x cols is column-major cols x k already
    std::copy(m, m + rows * cols, x);
  }
  householder_qr(x, mt, k, w.tau.data());
  w.c.resize(static_cast<size_t>(k * k));
  core_map(x, mt, k, static_cast<T>(zero_sv_tolerance(rows, cols, dtype)), beta, w, w.c.data());
  T* z = w.z.data();
  for (int64_t j = 0; j < k; ++j) std::copy_n(w.c.data() + j * k, k, z + j * mt);
  apply_q(x, w.tau.data(), mt, k, z);
  return tall;
}

// p <- decay * p + alpha * T(M) for the row-major rows x cols p; p <- T(M) without accumulate
// (p not read).
template <typename T>
void spectral_map_impl(const at::Tensor& M, double beta, bool accumulate, T decay, T alpha, T* p) {
  const int64_t rows = M.size(0), cols = M.size(1);
  auto& w = workspace<T>();
  const bool tall = spectral_map_tall(M.data_ptr<T>(), rows, cols, beta, M.scalar_type(), w);
  const int64_t mt = std::max(rows, cols);
  const T* z = w.z.data();
  for (int64_t i = 0; i < rows; ++i) {
    for (int64_t j = 0; j < cols; ++j) {
      const T t = tall ? z[i + j * mt] : z[j + i * mt];
      T& out = p[i * cols + j];
      out = accumulate ? decay * out + alpha * t : t;
    }
  }
}

template <typename T>
void newton_schulz_impl(const at::Tensor& M, int steps, double eps, at::Tensor& out) {
  const int64_t rows = M.size(0), cols = M.size(1);
  Eigen::Map<const RowMat<T>> m(M.data_ptr<T>(), rows, cols);
  Eigen::Map<RowMat<T>> o(out.data_ptr<T>(), rows, cols);
  const T a = T(3.4445), b = T(-4.7750), c = T(2.0315);
  // Iterate on the wide orientation so that the Gram matrix X X^T is the small one.
  const bool wide = rows <= cols;
  Mat<T> x = wide ? Mat<T>(m) : Mat<T>(m.transpose());
  x /= (x.norm() + static_cast<T>(eps));
  for (int k = 0; k < steps; ++k) {
    Mat<T> A = x * x.transpose();
    Mat<T> B = b * A + c * (A * A);
    x = a * x + B * x;
  }
  if (wide) {
    o = x;
  } else {
    o = x.transpose();
  }
}

}  // namespace

bool eligible(const at::Tensor& M, int64_t max_small_side) {
  return M.dim() == 2 && M.device().is_cpu() && M.is_contiguous() &&
         (M.scalar_type() == at::kDouble || M.scalar_type() == at::kFloat) &&
         std::min(M.size(0), M.size(1)) <= max_small_side && M.numel() > 0;
}

void spectral_map(const at::Tensor& M, double beta, at::Tensor& out) {
  if (M.scalar_type() == at::kDouble) {
    spectral_map_impl<double>(M, beta, false, 0.0, 0.0, out.data_ptr<double>());
  } else {
    spectral_map_impl<float>(M, beta, false, 0.0f, 0.0f, out.data_ptr<float>());
  }
}

void add_spectral_map(const at::Tensor& M, double beta, double decay, double alpha, at::Tensor& p) {
  if (M.scalar_type() == at::kDouble) {
    spectral_map_impl<double>(M, beta, true, decay, alpha, p.data_ptr<double>());
  } else {
    spectral_map_impl<float>(M, beta, true, static_cast<float>(decay), static_cast<float>(alpha),
                             p.data_ptr<float>());
  }
}

void newton_schulz(const at::Tensor& M, int steps, double eps, at::Tensor& out) {
  if (M.scalar_type() == at::kDouble) {
    newton_schulz_impl<double>(M, steps, eps, out);
  } else {
    newton_schulz_impl<float>(M, steps, eps, out);
  }
}

int eigen_max_align_bytes() { return EIGEN_MAX_ALIGN_BYTES; }

}  // namespace lorascope::small
