#include "optim/adamw.h"

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
  for (size_t i = 0; i < params_.size(); ++i) {
    auto& p = params_[i];
    const auto& g = p.grad();
    if (!g.defined()) continue;
    if (!exp_avg_[i].defined()) {
      exp_avg_[i] = at::zeros_like(p, at::MemoryFormat::Preserve);
      exp_avg_sq_[i] = at::zeros_like(p, at::MemoryFormat::Preserve);
    }
    if (options_.weight_decay != 0.0) p.mul_(1.0 - lr_ * options_.weight_decay);
    exp_avg_[i].mul_(options_.beta1).add_(g, 1.0 - options_.beta1);
    exp_avg_sq_[i].mul_(options_.beta2).addcmul_(g, g, 1.0 - options_.beta2);
    auto denom = (exp_avg_sq_[i].sqrt() / std::sqrt(bias_correction2)).add_(options_.eps);
    p.addcdiv_(exp_avg_[i], denom, -lr_ / bias_correction1);
  }
}

}  // namespace lorascope
