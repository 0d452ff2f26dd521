#include "optim/gram_newton_schulz.h"

#include "util/eigen.h"

#include <algorithm>
#include <cmath>

namespace lorascope {
namespace {

using Mat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic>;

constexpr int kRestartAfter = 2;  // iterations accumulated before the iterate is formed again

// `steps` iterations from the Gram matrix of the current iterate; the first phase also folds in
// the Frobenius normalisation X_0 = X / (||X||_F + eps), ||X||_F^2 = trace(G).
Mat phase_factor(const Mat& gram, int steps, bool normalize, double eps) {
  const auto r = gram.rows();
  const Mat G = (gram + gram.transpose()) / 2.0;  // a GEMM's X X^T may be asymmetric by ulps
  const double scale = normalize ? 1.0 / (std::sqrt(std::max(G.trace(), 0.0)) + eps) : 1.0;
  const Mat G0 = G * (scale * scale);
  const double a = 3.4445, b = -4.7750, c = 2.0315;
  Mat Q = Mat::Identity(r, r), A(r, r), B(r, r);
  for (int k = 0; k < steps; ++k) {
    A.noalias() = Q * G0 * Q.transpose();
    B.noalias() = c * A * A;
    B += b * A;
    Q = a * Q + B * Q;
  }
  return Q * scale;
}

// Restarts taken by `steps` iterations: the last phase keeps up to kRestartAfter + 1 of them.
int restarts(int steps) {
  int n = 0;
  for (int left = steps; left > kRestartAfter + 1; left -= kRestartAfter) ++n;
  return n;
}

template <typename T, int Order>
void view_iteration(const T* x, T* out, T* scratch, int64_t r, int64_t n, int steps, double eps) {
  using View = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Order>;
  using Small = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>;
  // X X^T in T (one GEMM over the long side), then the r x r work in float64.
  const auto gram = [&](const T* y) {
    const Eigen::Map<const View> Y(y, r, n);
    Small g(r, r);
    g.noalias() = Y * Y.transpose();
    return Mat(g.template cast<double>());
  };
  // The iterates formed at restarts alternate between scratch and out so that the last one is
  // in scratch and the final product can go to out.
  const int total = restarts(steps);
  const T* cur = x;
  int left = steps;
  for (int k = 1; k <= total; ++k, left -= kRestartAfter) {
    const Small q = phase_factor(gram(cur), kRestartAfter, k == 1, eps).template cast<T>();
    T* next = (total - k) % 2 == 0 ? scratch : out;
    Eigen::Map<View>(next, r, n).noalias() = q * Eigen::Map<const View>(cur, r, n);
    cur = next;
  }
  const Small q = phase_factor(gram(cur), left, total == 0, eps).template cast<T>();
  Eigen::Map<View>(out, r, n).noalias() = q * Eigen::Map<const View>(cur, r, n);
}

// NS_steps of the r x n matrix x (r <= n; row-major, or column-major: the transpose of a tall
// contiguous matrix) into out in the same layout; scratch holds the iterate formed at a restart.
template <typename T>
void gram_newton_schulz_view(const T* x, T* out, T* scratch, int64_t r, int64_t n, bool row_major, int steps,
                             double eps) {
  if (row_major) {
    view_iteration<T, Eigen::RowMajor>(x, out, scratch, r, n, steps, eps);
  } else {
    view_iteration<T, Eigen::ColMajor>(x, out, scratch, r, n, steps, eps);
  }
}

}  // namespace

bool gram_newton_schulz_applies(const at::Tensor& M) {
  if (M.dim() != 2 || !M.device().is_cpu() || !M.is_contiguous()) return false;
  if (M.scalar_type() != at::kFloat && M.scalar_type() != at::kDouble) return false;
  const int64_t s = std::min(M.size(0), M.size(1)), l = std::max(M.size(0), M.size(1));
  return s >= 1 && s <= 64 && l >= 4 * s && M.numel() >= 4096;
}

void gram_newton_schulz_polynomial(const double* gram, int64_t r, int steps, double eps, double* q) {
  using RowMat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  Eigen::Map<RowMat>(q, r, r) = phase_factor(Eigen::Map<const RowMat>(gram, r, r), steps, true, eps);
}

void gram_newton_schulz(const at::Tensor& M, int steps, double eps, at::Tensor& out) {
  TORCH_CHECK(gram_newton_schulz_applies(M), "gram_newton_schulz: expected a thin CPU matrix");
  TORCH_CHECK(out.sizes() == M.sizes() && out.scalar_type() == M.scalar_type() && out.is_contiguous(),
              "gram_newton_schulz: out must be contiguous with M's shape and dtype");
  // A wide r x n matrix is a row-major view; a tall n x r one is the column-major view of its
  // transpose, and NS(M^T) = NS(M)^T.
  const bool wide = M.size(0) <= M.size(1);
  const int64_t r = wide ? M.size(0) : M.size(1), n = wide ? M.size(1) : M.size(0);
  auto scratch = at::empty_like(M);
  if (M.scalar_type() == at::kDouble) {
    gram_newton_schulz_view(M.data_ptr<double>(), out.data_ptr<double>(), scratch.data_ptr<double>(), r, n, wide,
                            steps, eps);
  } else {
    gram_newton_schulz_view(M.data_ptr<float>(), out.data_ptr<float>(), scratch.data_ptr<float>(), r, n, wide,
                            steps, eps);
  }
}

}  // namespace lorascope
