#include "models/factorization.h"

#include <ATen/core/grad_mode.h>  // at::NoGradGuard (not in <ATen/ATen.h> from LibTorch 2 on)

#include "util/eigen.h"

#include <stdexcept>

namespace lorascope {

FactorInit parse_factor_init(const std::string& name) {
  if (name == "a_zero") return FactorInit::AZero;
  if (name == "b_zero") return FactorInit::BZero;
  throw std::invalid_argument("expected one of a_zero, b_zero, got \"" + name + "\"");
}

Factorization::Factorization(std::vector<at::Tensor> factors) : factors_(std::move(factors)) {
  if (factors_.empty()) throw std::invalid_argument("factorization: no factors");
  for (size_t k = 0; k < factors_.size(); ++k) {
    const auto& f = factors_[k];
    if (f.dim() != 2) {
      throw std::invalid_argument("factorization: factor " + std::to_string(k) +
                                  " is not a matrix (shape " + c10::str(f.sizes()) + ")");
    }
    if (f.scalar_type() != factors_[0].scalar_type() || f.device() != factors_[0].device()) {
      throw std::invalid_argument("factorization: factors differ in dtype or device");
    }
    if (k > 0 && factors_[k - 1].size(1) != f.size(0)) {
      throw std::invalid_argument("factorization: factor " + std::to_string(k - 1) + " is " +
                                  c10::str(factors_[k - 1].sizes()) + " but factor " +
                                  std::to_string(k) + " is " + c10::str(f.sizes()));
    }
  }
  for (auto& f : factors_) f = f.contiguous();
  small_cpu_ = true;
  for (const auto& f : factors_) {
    small_cpu_ = small_cpu_ && f.device().is_cpu() && f.scalar_type() == at::kDouble;
  }
}

Factorization Factorization::random_init(int64_t m, int64_t n, int64_t r, int depth,
                                         double gamma, FactorInit init, at::Generator& gen,
                                         const at::TensorOptions& options) {
  if (depth < 2) throw std::invalid_argument("factorization: depth must be >= 2");
  std::vector<at::Tensor> f;
  for (int k = 0; k < depth; ++k) {
    const int64_t rows = k == 0 ? m : r;
    const int64_t cols = k == depth - 1 ? n : r;
    const bool zero = (init == FactorInit::AZero && k == 0) ||
                      (init == FactorInit::BZero && k == depth - 1);
    // Draw even the zero factor's noise so both conventions consume the generator alike.
    auto g = at::randn({rows, cols}, gen, options.dtype(at::kDouble)).to(options) * gamma;
    f.push_back(zero ? at::zeros({rows, cols}, options) : g);
  }
  return Factorization(std::move(f));
}

at::Tensor Factorization::product() const {
  at::Tensor W = factors_[0];
  for (size_t k = 1; k < factors_.size(); ++k) W = at::matmul(W, factors_[k]);
  return W;
}

double Factorization::loss(const at::Tensor& Y) const {
  at::NoGradGuard no_grad;
  return 0.5 * (product() - Y).pow(2).sum().item<double>();
}

double Factorization::loss_and_grad_reference(const at::Tensor& Y) {
  at::NoGradGuard no_grad;
  const size_t L = factors_.size();
  // prefix[k] = F_0 ... F_{k-1}, suffix[k] = F_{k+1} ... F_{L-1} (undefined = identity)
  std::vector<at::Tensor> prefix(L), suffix(L);
  for (size_t k = 1; k < L; ++k) {
    prefix[k] = k == 1 ? factors_[0] : at::matmul(prefix[k - 1], factors_[k - 1]);
  }
  for (size_t k = L - 1; k-- > 0;) {
    suffix[k] = k == L - 2 ? factors_[L - 1] : at::matmul(factors_[k + 1], suffix[k + 1]);
  }
  const at::Tensor E = at::matmul(factors_[0], suffix[0]) - Y;  // (m, n)
  for (size_t k = 0; k < L; ++k) {
    at::Tensor g = E;
    if (prefix[k].defined()) g = at::matmul(prefix[k].t(), g);
    if (suffix[k].defined()) g = at::matmul(g, suffix[k].t());
    factors_[k].mutable_grad() = g;
  }
  return 0.5 * E.pow(2).sum().item<double>();
}

namespace {
using RowMat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Map = Eigen::Map<RowMat>;
using ConstMap = Eigen::Map<const RowMat>;
ConstMap cmap(const at::Tensor& t) { return ConstMap(t.data_ptr<double>(), t.size(0), t.size(1)); }
}  // namespace

double Factorization::loss_and_grad(const at::Tensor& Y) {
  if (!small_cpu_ || !Y.device().is_cpu() || Y.scalar_type() != at::kDouble ||
      !Y.is_contiguous()) {
    return loss_and_grad_reference(Y);
  }
  // Eigen path: the matrices of the MF studies are tiny, and ATen's per-op overhead would
  // dominate the step. Same formula as loss_and_grad_reference().
  const size_t L = factors_.size();
  std::vector<Map> grads;
  grads.reserve(L);
  for (auto& f : factors_) {
    if (!f.grad().defined() || !f.grad().is_contiguous() || !f.grad().sizes().equals(f.sizes())) {
      f.mutable_grad() = at::empty_like(f, at::MemoryFormat::Contiguous);
    }
    grads.emplace_back(f.mutable_grad().data_ptr<double>(), f.size(0), f.size(1));
  }
  residual_.resize(static_cast<size_t>(rows() * cols()));
  Map E(residual_.data(), rows(), cols());
  if (L == 2) {  // LoRA's W = A B: no prefix or suffix products to form
    const ConstMap A = cmap(factors_[0]), B = cmap(factors_[1]);
    E = -cmap(Y);  // then E += A B: one pass over E besides the product (no zeroing, no subtract)
    E.noalias() += A * B;
    grads[0].noalias() = E * B.transpose();
    grads[1].noalias() = A.transpose() * E;
    return 0.5 * E.squaredNorm();
  }
  std::vector<RowMat> prefix(L), suffix(L);
  for (size_t k = 1; k < L; ++k) {
    prefix[k] = k == 1 ? RowMat(cmap(factors_[0])) : RowMat(prefix[k - 1] * cmap(factors_[k - 1]));
  }
  for (size_t k = L - 1; k-- > 0;) {
    suffix[k] = k == L - 2 ? RowMat(cmap(factors_[L - 1]))
                           : RowMat(cmap(factors_[k + 1]) * suffix[k + 1]);
  }
  E = -cmap(Y);
  E.noalias() += cmap(factors_[0]) * suffix[0];
  for (size_t k = 0; k < L; ++k) {
    if (k == 0) {
      grads[k].noalias() = E * suffix[0].transpose();
    } else if (k == L - 1) {
      grads[k].noalias() = prefix[k].transpose() * E;
    } else {
      grads[k].noalias() = prefix[k].transpose() * (E * suffix[k].transpose());
    }
  }
  return 0.5 * E.squaredNorm();
}

}  // namespace lorascope
