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
// The k x k core of spectral_map when k <= kMaxCore: storage inside the object, so the SVD of the
// core allocates nothing (the MF studies call this twice a step with k = rank, e.g. 5).
constexpr int kMaxCore = 16;
template <typename T>
using CoreMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor, kMaxCore, kMaxCore>;

// Buffers reused from call to call (per thread): after the first call of a shape, spectral_map
// allocates nothing.
template <typename T>
struct Workspace {
  std::vector<T> x;    // (m, k) column-major: M in tall orientation, then its Householder QR
  std::vector<T> tau;  // (k) reflector coefficients
  std::vector<T> z;    // (m, k) column-major: Q [C; 0]
  std::vector<T> c;    // (k, k) column-major: C = U_R f(S) V_R^T
};
template <typename T>
Workspace<T>& workspace() {
  thread_local Workspace<T> w;
  return w;
}

// Householder QR of the column-major m x k matrix x (m >= k) in place, as LAPACK's geqr2 and
// Eigen's householder_qr_inplace_unblocked: R on and above the diagonal, below it the essential
// parts of v_j in H_j = I - tau_j v_j v_j^T (v_j(j) = 1), Q = H_0 H_1 ... H_{k-1}.
template <typename T>
void householder_qr(T* x, int64_t m, int64_t k, T* tau) {
  for (int64_t j = 0; j < k; ++j) {
    T* v = x + j * m;
    const T c0 = v[j];
    T tail = 0;
    for (int64_t i = j + 1; i < m; ++i) tail += v[i] * v[i];
    if (tail <= std::numeric_limits<T>::min()) {  // nothing below the diagonal: H_j = I
      tau[j] = 0;
      continue;
    }
    T beta = std::sqrt(c0 * c0 + tail);
    if (c0 >= T(0)) beta = -beta;
    const T inv = T(1) / (c0 - beta);
    for (int64_t i = j + 1; i < m; ++i) v[i] *= inv;
    tau[j] = (beta - c0) / beta;
    v[j] = beta;
    for (int64_t col = j + 1; col < k; ++col) {  // H_j applied to the columns to the right
      T* y = x + col * m;
      T w = y[j];
      for (int64_t i = j + 1; i < m; ++i) w += v[i] * y[i];
      w *= tau[j];
      y[j] -= w;
      for (int64_t i = j + 1; i < m; ++i) y[i] -= w * v[i];
    }
  }
}

// z <- Q z = H_0 ... H_{k-1} z for the column-major m x k matrix z, Q from householder_qr.
template <typename T>
void apply_q(const T* x, const T* tau, int64_t m, int64_t k, T* z) {
  for (int64_t j = k - 1; j >= 0; --j) {
    if (tau[j] == T(0)) continue;
    const T* v = x + j * m;
    for (int64_t col = 0; col < k; ++col) {
      T* y = z + col * m;
      T w = y[j];
      for (int64_t i = j + 1; i < m; ++i) w += v[i] * y[i];
      w *= tau[j];
      y[j] -= w;
      for (int64_t i = j + 1; i < m; ++i) y[i] -= w * v[i];
    }
  }
}

// c = U f(S) V^T (column-major k x k) for the k x k matrix r, f as in spectral_map; the zero
// tolerance is relative to the largest singular value of M, which r shares.
template <typename T, typename Core>
void core_map(const Core& r, T tol_factor, double beta, T* c) {
  Eigen::JacobiSVD<Core, Eigen::NoQRPreconditioner> svd(r, Eigen::ComputeFullU | Eigen::ComputeFullV);
  const auto& s = svd.singularValues();
  const auto& U = svd.matrixU();
  const auto& V = svd.matrixV();
  const Eigen::Index k = r.rows();
  const T tol = tol_factor * (k > 0 ? s(0) : T(0));
  T f[kMaxCore];
  std::vector<T> f_big;
  T* fp = f;
  if (k > kMaxCore) {
    f_big.resize(static_cast<size_t>(k));
    fp = f_big.data();
  }
  for (Eigen::Index l = 0; l < k; ++l) {
    fp[l] = (s(l) > tol && s(l) > T(0)) ? s(l) / std::sqrt(s(l) * s(l) + static_cast<T>(beta)) : T(0);
  }
  for (Eigen::Index j = 0; j < k; ++j) {
    for (Eigen::Index i = 0; i < k; ++i) {
      T acc = 0;
      for (Eigen::Index l = 0; l < k; ++l) acc += U(i, l) * fp[l] * V(j, l);
      c[i + j * k] = acc;
    }
  }
}

// Writes T = U f(S) V^T of the rows x cols row-major matrix m into the workspace's z, in the
// tall orientation (column-major max(rows, cols) x min(rows, cols)); returns whether M is tall.
//
// Tall orientation M = Q R (Householder), then an SVD of the k x k triangle R:
// M = (Q U_R) S V_R^T, so T = Q [U_R f(S) V_R^T; 0]. Both steps are backward stable (unlike an
// eigen-decomposition of M^T M, which squares the condition number), and the SVD only sees a
// k x k matrix.
template <typename T>
bool spectral_map_tall(const T* m, int64_t rows, int64_t cols, double beta, at::ScalarType dtype,
                       Workspace<T>& w) {
  const bool tall = rows >= cols;
  const int64_t mt = std::max(rows, cols), k = std::min(rows, cols);
  w.x.resize(static_cast<size_t>(mt * k));
  w.z.resize(static_cast<size_t>(mt * k));
  w.tau.resize(static_cast<size_t>(k));
  w.c.resize(static_cast<size_t>(k * k));
  T* x = w.x.data();
  if (tall) {  // row-major rows x k into column-major: a transposing copy
    for (int64_t i = 0; i < rows; ++i) {
      for (int64_t j = 0; j < k; ++j) x[i + j * mt] = m[i * cols + j];
    }
  } else {  // row-major k x cols is column-major cols x k already
    std::copy(m, m + rows * cols, x);
  }
  householder_qr(x, mt, k, w.tau.data());
  const T tol_factor = static_cast<T>(zero_sv_tolerance(rows, cols, dtype));
  auto fill_core = [&](auto& r) {
    r.setZero(k, k);
    for (int64_t j = 0; j < k; ++j) {
      for (int64_t i = 0; i <= j; ++i) r(i, j) = x[i + j * mt];
    }
    core_map(r, tol_factor, beta, w.c.data());
  };
  if (k <= kMaxCore) {
    CoreMat<T> r;
    fill_core(r);
  } else {
    Mat<T> r;
    fill_core(r);
  }
  T* z = w.z.data();
  std::fill(z, z + mt * k, T(0));
  for (int64_t j = 0; j < k; ++j) {
    for (int64_t i = 0; i < k; ++i) z[i + j * mt] = w.c[static_cast<size_t>(i + j * k)];
  }
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
