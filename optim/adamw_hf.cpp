#include "optim/adamw_hf.h"

#include <ATen/core/grad_mode.h>  // at::NoGradGuard (not in <ATen/ATen.h> from LibTorch 2 on)
#include <cmath>
#include <stdexcept>

namespace lorascope {

AdamWHF::AdamWHF(std::vector<at::Tensor> params, AdamWHFOptions options)
    : Optimizer(std::move(params), options.lr), options_(options), exp_avg_(params_.size()), exp_avg_sq_(params_.size()) {
  if (!(options_.beta1 >= 0 && options_.beta1 < 1 && options_.beta2 >= 0 && options_.beta2 < 1)) {
    throw std::invalid_argument("adamw_hf: betas must be in [0, 1)");
  }
  if (!(options_.eps >= 0)) throw std::invalid_argument("adamw_hf: eps must be >= 0");
  register_buffers({{"exp_avg", &exp_avg_}, {"exp_avg_sq", &exp_avg_sq_}});
}

void AdamWHF::step() {
  check_finite_lr();
  at::NoGradGuard no_grad;
  ++step_;
  double step_size = lr_;
  if (options_.correct_bias) {
    const double t = static_cast<double>(step_);
    step_size *= std::sqrt(1.0 - std::pow(options_.beta2, t)) / (1.0 - std::pow(options_.beta1, t));
  }
  for (size_t i = 0; i < params_.size(); ++i) {
    auto& p = params_[i];
    const auto& g = p.grad();
    if (!g.defined()) continue;
    if (!exp_avg_[i].defined()) {
      exp_avg_[i] = at::zeros_like(p, at::MemoryFormat::Preserve);
      exp_avg_sq_[i] = at::zeros_like(p, at::MemoryFormat::Preserve);
    }
    exp_avg_[i].mul_(options_.beta1).add_(g, 1.0 - options_.beta1);
    exp_avg_sq_[i].mul_(options_.beta2).addcmul_(g, g, 1.0 - options_.beta2);
    p.addcdiv_(exp_avg_[i], exp_avg_sq_[i].sqrt().add_(options_.eps), -step_size);
    if (options_.weight_decay > 0.0) p.add_(p, -lr_ * options_.weight_decay);
  }
}

}  // namespace lorascope
