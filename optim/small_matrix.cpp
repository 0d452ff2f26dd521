#include "optim/small_matrix.h"

#include "util/eigen.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "optim/orthogonalize.h"

namespace lorascope::small {
namespace {

template <typename T>
using RowMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <typename T>
using Mat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>;

template <typename T>
void spectral_map_impl(const at::Tensor& M, double beta, at::Tensor& out) {
  const int64_t rows = M.size(0), cols = M.size(1);
  Eigen::Map<const RowMat<T>> m(M.data_ptr<T>(), rows, cols);
  Eigen::Map<RowMat<T>> o(out.data_ptr<T>(), rows, cols);
  // Tall orientation M = Q R (Householder, rows x k), then an SVD of the k x k triangle R:
  // M = (Q U_R) S V_R^T. Both steps are backward stable (unlike an eigen-decomposition of
  // M^T M, which squares the condition number), and the SVD only sees a k x k matrix.
  const bool tall = rows >= cols;
  const int64_t k = std::min(rows, cols);
  Mat<T> tallm = tall ? Mat<T>(m) : Mat<T>(m.transpose());
  Eigen::HouseholderQR<Mat<T>> qr(tallm);
  Mat<T> R = qr.matrixQR().topRows(k).template triangularView<Eigen::Upper>();
  Eigen::JacobiSVD<Mat<T>> svd(R, Eigen::ComputeFullU | Eigen::ComputeFullV);
  const auto& s = svd.singularValues();
  const T tol = static_cast<T>(zero_sv_tolerance(rows, cols, M.scalar_type())) *
                (s.size() > 0 ? s(0) : T(0));
  Eigen::Matrix<T, Eigen::Dynamic, 1> f(s.size());
  for (Eigen::Index i = 0; i < s.size(); ++i) {
    f(i) = (s(i) > tol && s(i) > T(0)) ? s(i) / std::sqrt(s(i) * s(i) + static_cast<T>(beta)) : T(0);
  }
  Mat<T> t = Mat<T>::Zero(tallm.rows(), k);  // Q [U_R f(S) V_R^T; 0]
  t.topRows(k) = svd.matrixU() * f.asDiagonal() * svd.matrixV().transpose();
  t.applyOnTheLeft(qr.householderQ());
  if (tall) {
    o = t;
  } else {
    o = t.transpose();
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
    spectral_map_impl<double>(M, beta, out);
  } else {
    spectral_map_impl<float>(M, beta, out);
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
