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
template <typename T>
at::Tensor phase_factor(const at::Tensor& gram, int steps, bool normalize, double eps) {
  const auto r = gram.size(0);
  using In = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const Mat G_in = Eigen::Map<const In>(gram.data_ptr<T>(), r, r).template cast<double>();
  const Mat G = (G_in + G_in.transpose()) / 2.0;  // a GEMM's X X^T may be asymmetric by ulps
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
  Q *= scale;
  auto out = at::empty({r, r}, gram.options());
  Eigen::Map<In>(out.data_ptr<T>(), r, r) = Q.cast<T>();
  return out;
}

at::Tensor phase_factor(const at::Tensor& gram, int steps, bool normalize, double eps) {
  const auto g = gram.contiguous();
  return g.scalar_type() == at::kDouble ? phase_factor<double>(g, steps, normalize, eps)
                                        : phase_factor<float>(g, steps, normalize, eps);
}

}  // namespace

bool gram_newton_schulz_applies(const at::Tensor& M) {
  if (M.dim() != 2 || !M.device().is_cpu() || !M.is_contiguous()) return false;
  if (M.scalar_type() != at::kFloat && M.scalar_type() != at::kDouble) return false;
  const int64_t s = std::min(M.size(0), M.size(1)), l = std::max(M.size(0), M.size(1));
  return s >= 1 && s <= 64 && l >= 4 * s && M.numel() >= 4096;
}

GramNewtonSchulz gram_newton_schulz_factors(const at::Tensor& M, int steps, double eps) {
  TORCH_CHECK(gram_newton_schulz_applies(M), "gram_newton_schulz: expected a thin CPU matrix");
  GramNewtonSchulz f{M, at::Tensor(), M.size(0) <= M.size(1)};
  auto gram = [&] { return f.wide ? at::mm(f.y, f.y.t()) : at::mm(f.y.t(), f.y); };
  bool first = true;
  int left = steps;
  while (left > kRestartAfter + 1) {  // the last phase keeps up to kRestartAfter + 1 iterations
    const auto q = phase_factor(gram(), kRestartAfter, first, eps);
    f.y = f.wide ? at::mm(q, f.y) : at::mm(f.y, q.t());
    first = false;
    left -= kRestartAfter;
  }
  f.q = phase_factor(gram(), left, first, eps);
  return f;
}

void gram_newton_schulz(const at::Tensor& M, int steps, double eps, at::Tensor& out) {
  const auto f = gram_newton_schulz_factors(M, steps, eps);
  if (f.wide) {
    at::mm_out(out, f.q, f.y);
  } else {
    at::mm_out(out, f.y, f.q.t());
  }
}

}  // namespace lorascope
