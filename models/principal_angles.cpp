#include "models/principal_angles.h"

#include <ATen/core/grad_mode.h>  // at::NoGradGuard (not in <ATen/ATen.h> from LibTorch 2 on)
#include <cmath>
#include <stdexcept>
#include <string>

namespace lorascope {

namespace {
void check_bases(const at::Tensor& Q1, const at::Tensor& Q2, const char* who) {
  if (Q1.dim() != 2 || Q2.dim() != 2 || Q1.size(0) != Q2.size(0)) {
    throw std::invalid_argument(std::string(who) + ": expected two bases (m, a) and (m, b), got " +
                                c10::str(Q1.sizes()) + " and " + c10::str(Q2.sizes()));
  }
}
}  // namespace

at::Tensor principal_angles(const at::Tensor& Q1_in, const at::Tensor& Q2_in) {
  check_bases(Q1_in, Q2_in, "principal_angles");
  at::NoGradGuard no_grad;
  at::Tensor Q1 = Q1_in.to(at::kDouble), Q2 = Q2_in.to(at::kDouble);
  if (Q1.size(1) < Q2.size(1)) std::swap(Q1, Q2);  // a >= b: the sines below need it
  const int64_t q = Q2.size(1);
  if (q == 0) return at::empty({0}, at::kDouble);
  const at::Tensor M = at::matmul(Q1.t(), Q2);                                // (a, b)
  const at::Tensor cos = at::linalg_svdvals(M).clamp(0.0, 1.0).cpu();         // descending
  const at::Tensor sin = at::linalg_svdvals(Q2 - at::matmul(Q1, M)).clamp(0.0, 1.0).cpu();
  // sin is descending too: the largest sine belongs to the largest angle, i.e. the smallest cosine.
  auto out = at::empty({q}, at::kDouble);
  const double* c = cos.data_ptr<double>();
  const double* s = sin.data_ptr<double>();
  double* th = out.data_ptr<double>();
  for (int64_t i = 0; i < q; ++i) {
    const double si = s[q - 1 - i];
    th[i] = c[i] * c[i] < 0.5 ? std::acos(c[i]) : std::asin(si);
  }
  return out;
}

double grassmann_similarity(const at::Tensor& Q1, const at::Tensor& Q2) {
  check_bases(Q1, Q2, "grassmann_similarity");
  const int64_t q = std::min(Q1.size(1), Q2.size(1));
  if (q == 0) return std::nan("");
  const at::Tensor M = at::matmul(Q1.to(at::kDouble).t(), Q2.to(at::kDouble));
  return M.pow(2).sum().item<double>() / static_cast<double>(q);
}

at::Tensor grassmann_similarity_grid(const at::Tensor& Q1, const at::Tensor& Q2) {
  check_bases(Q1, Q2, "grassmann_similarity_grid");
  const int64_t a = Q1.size(1), b = Q2.size(1);
  // ||Q1[:, :i]^T Q2[:, :j]||_F^2 is the sum of M_kl^2 over k < i, l < j: a 2-D prefix sum.
  const at::Tensor M2 = at::matmul(Q1.to(at::kDouble).t(), Q2.to(at::kDouble)).pow(2).cpu();
  const at::Tensor sums = M2.cumsum(0).cumsum(1);
  const at::Tensor i = at::arange(1, a + 1, at::kDouble).unsqueeze(1).expand({a, b});
  const at::Tensor j = at::arange(1, b + 1, at::kDouble).unsqueeze(0).expand({a, b});
  return sums / at::minimum(i, j);
}

at::Tensor orthonormal_range(const at::Tensor& M, double rtol) {
  at::NoGradGuard no_grad;
  const at::Tensor Md = M.to(at::kDouble);
  if (Md.numel() == 0) return at::empty({Md.size(0), 0}, Md.options());
  auto [U, S, Vh] = at::linalg_svd(Md, /*full_matrices=*/false);
  const double s1 = S.numel() ? S[0].item<double>() : 0.0;
  if (!(s1 > 0)) return at::empty({Md.size(0), 0}, Md.options());
  const int64_t keep = (S > rtol * s1).sum().item<int64_t>();
  return U.narrow(1, 0, keep);
}

}  // namespace lorascope
