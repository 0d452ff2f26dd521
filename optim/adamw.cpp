#include "optim/adamw.h"

#include <ATen/core/grad_mode.h>  // at::NoGradGuard (not in <ATen/ATen.h> from LibTorch 2 on)

#include <cmath>
#include <stdexcept>

namespace lorascope {

AdamW::AdamW(std::vector<at::Tensor> params, AdamWOptions options)
    : Optimizer(std::move(params), options.lr),
      options_(options),
      exp_avg_(params_.size()),
      exp_avg_sq_(params_.size()) {
  if (!(options_.beta1 >= 0 && options_.beta1 < 1 && options_.beta2 >= 0 && options_.beta2 < 1)) {
    throw std::invalid_argument("adamw: betas must be in [0, 1)");
  }
  if (!(options_.eps > 0)) throw std::invalid_argument("adamw: eps must be > 0");
  register_buffers({{"exp_avg", &exp_avg_}, {"exp_avg_sq", &exp_avg_sq_}});
}

void AdamW::step() {
  check_finite_lr();
  at::NoGradGuard no_grad;
  ++step_;
  const double bias_correction1 = 1.0 - std::pow(options_.beta1, static_cast<double>(step_));
  const double bias_correction2 = 1.0 - std::pow(options_.beta2, static_cast<double>(step_));
  // The update of torch.optim.AdamW, as foreach kernels over every parameter with a gradient
  // (one launch per operation instead of one per operation and parameter on a GPU).
  std::vector<at::Tensor> params, grads, m, v;
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto& g = params_[i].grad();
    if (!g.defined()) continue;
    if (!exp_avg_[i].defined()) {
      exp_avg_[i] = at::zeros_like(params_[i], at::MemoryFormat::Preserve);
      exp_avg_sq_[i] = at::zeros_like(params_[i], at::MemoryFormat::Preserve);
    }
    params.push_back(params_[i]);
    grads.push_back(g);
    m.push_back(exp_avg_[i]);
    v.push_back(exp_avg_sq_[i]);
  }
  if (params.empty()) return;
  if (options_.weight_decay != 0.0) at::_foreach_mul_(params, 1.0 - lr_ * options_.weight_decay);
  at::_foreach_mul_(m, options_.beta1);
  at::_foreach_add_(m, grads, 1.0 - options_.beta1);
  at::_foreach_mul_(v, options_.beta2);
  at::_foreach_addcmul_(v, grads, grads, 1.0 - options_.beta2);
  auto denom = at::_foreach_sqrt(v);
  at::_foreach_div_(denom, std::sqrt(bias_correction2));
  at::_foreach_add_(denom, options_.eps);
  at::_foreach_addcdiv_(params, m, denom, -lr_ / bias_correction1);
}

}  // namespace lorascope
