#include "optim/riemannian_lora.h"

#include <ATen/core/grad_mode.h>  // at::NoGradGuard (not in <ATen/ATen.h> from LibTorch 2 on)
#include <cmath>
#include <limits>
#include <set>
#include <stdexcept>
#include <string>

namespace lorascope {

namespace {

// (M + delta I)^+ of a symmetric PSD r x r matrix, float64.
at::Tensor damped_pinv(const at::Tensor& M, double delta) {
  const int64_t r = M.size(0);
  auto H = M.to(at::kDouble) + delta * at::eye(r, M.options().dtype(at::kDouble));
  auto [lambda, Q] = at::linalg_eigh(H);
  const double tol = static_cast<double>(r) * std::numeric_limits<double>::epsilon() *
                     lambda.abs().max().item<double>();
  auto inv = at::where(lambda > tol, lambda.reciprocal(), at::zeros_like(lambda));
  return at::matmul(Q * inv.unsqueeze(0), Q.t());
}

void check_delta(double delta) {
  if (!(delta >= 0) || !std::isfinite(delta)) {
    throw std::invalid_argument("riemannian: delta must be a finite number >= 0, got " + std::to_string(delta));
  }
}

}  // namespace

at::Tensor precondition_grad_A(const at::Tensor& grad_A, const at::Tensor& B, double delta) {
  check_delta(delta);
  auto B64 = B.detach().to(at::kDouble);
  auto P = damped_pinv(at::matmul(B64.t(), B64), delta);  // (r, r)
  return at::matmul(P, grad_A.to(at::kDouble)).to(grad_A.scalar_type());
}

at::Tensor precondition_grad_B(const at::Tensor& grad_B, const at::Tensor& A, double delta) {
  check_delta(delta);
  auto A64 = A.detach().to(at::kDouble);
  auto P = damped_pinv(at::matmul(A64, A64.t()), delta);  // (r, r)
  return at::matmul(grad_B.to(at::kDouble), P).to(grad_B.scalar_type());
}

RiemannianOptions lora_fa_options() {
  RiemannianOptions o;
  o.delta = 1e-8;
  o.precondition_A = false;
  o.precondition_B = true;
  o.divide_by_scaling_squared = true;
  return o;
}

RiemannianLora::RiemannianLora(std::vector<LoraPair> pairs, RiemannianOptions options,
                               std::unique_ptr<Optimizer> base)
    : Optimizer(base ? base->params() : std::vector<at::Tensor>{}, base ? base->base_lr() : 0.0),
      pairs_(std::move(pairs)),
      options_(options),
      base_(std::move(base)) {
  if (!base_) throw std::invalid_argument("riemannian: no base optimizer");
  check_delta(options_.delta);
  if (pairs_.empty()) throw std::invalid_argument("riemannian: no (A, B) pairs");
  std::set<const void*> owned;
  for (const auto& p : base_->params()) owned.insert(p.unsafeGetTensorImpl());
  for (size_t i = 0; i < pairs_.size(); ++i) {
    const auto& [A, B, s] = pairs_[i];
    if (A.dim() != 2 || B.dim() != 2 || B.size(1) != A.size(0)) {
      throw std::invalid_argument("riemannian: pair " + std::to_string(i) + ": expected A (r, in) and B (out, r), got " +
                                  c10::str(A.sizes()) + " and " + c10::str(B.sizes()));
    }
    if (!(s > 0) || !std::isfinite(s)) {
      throw std::invalid_argument("riemannian: pair " + std::to_string(i) + ": scaling must be > 0");
    }
    if ((options_.precondition_A && !owned.count(A.unsafeGetTensorImpl())) ||
        (options_.precondition_B && !owned.count(B.unsafeGetTensorImpl()))) {
      throw std::invalid_argument("riemannian: pair " + std::to_string(i) +
                                  ": a factor to precondition is not a parameter of the base optimizer");
    }
  }
}

void RiemannianLora::step() {
  check_finite_lr();
  at::NoGradGuard no_grad;
  // Every preconditioned gradient from the factors as they are before any update.
  std::vector<std::pair<at::Tensor, at::Tensor>> swapped;  // (parameter, original gradient)
  std::vector<at::Tensor> preconditioned;
  for (const auto& [A, B, s] : pairs_) {
    const double f = options_.divide_by_scaling_squared ? 1.0 / (s * s) : 1.0;
    if (options_.precondition_A && A.grad().defined()) {
      swapped.emplace_back(A, A.grad());
      preconditioned.push_back(precondition_grad_A(A.grad(), B, options_.delta).mul_(f));
    }
    if (options_.precondition_B && B.grad().defined()) {
      swapped.emplace_back(B, B.grad());
      preconditioned.push_back(precondition_grad_B(B.grad(), A, options_.delta).mul_(f));
    }
  }
  for (size_t k = 0; k < swapped.size(); ++k) swapped[k].first.mutable_grad() = preconditioned[k];
  try {
    base_->step();
  } catch (...) {
    for (auto& [p, g] : swapped) p.mutable_grad() = g;
    throw;
  }
  for (auto& [p, g] : swapped) p.mutable_grad() = g;
  ++step_;
}

void RiemannianLora::set_lr_factor(double factor) {
  Optimizer::set_lr_factor(factor);
  base_->set_lr_factor(factor);
}

void RiemannianLora::load_state_dict(const TensorDict& state) {
  base_->load_state_dict(state);
  step_ = base_->step_count();
}

}  // namespace lorascope
