#include "optim/sgd.h"

#include <ATen/core/grad_mode.h>  // at::NoGradGuard (not in <ATen/ATen.h> from LibTorch 2 on)

#include <stdexcept>

namespace lorascope {

SGD::SGD(std::vector<at::Tensor> params, SGDOptions options)
    : Optimizer(std::move(params), options.lr), options_(options), momentum_(params_.size()) {
  if (!(options_.momentum >= 0.0 && options_.momentum < 1.0)) {
    throw std::invalid_argument("sgd: momentum must be in [0, 1)");
  }
  if (options_.nesterov && (options_.momentum == 0.0 || options_.dampening != 0.0)) {
    throw std::invalid_argument("sgd: nesterov needs momentum > 0 and dampening = 0");
  }
  register_buffers({{"momentum", &momentum_}});
}

void SGD::step() {
  check_finite_lr();
  at::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    auto& p = params_[i];
    if (!p.grad().defined()) continue;
    at::Tensor d = p.grad();
    if (options_.weight_decay != 0.0) d = d.add(p, options_.weight_decay);
    if (options_.momentum != 0.0) {
      auto& buf = momentum_[i];
      if (!buf.defined()) {
        buf = d.clone();
      } else {
        buf.mul_(options_.momentum).add_(d, 1.0 - options_.dampening);
      }
      d = options_.nesterov ? d.add(buf, options_.momentum) : buf;
    }
    p.add_(d, -lr_);
  }
  ++step_;
}

}  // namespace lorascope
