#include "optim/muon.h"

#include <cmath>
#include <stdexcept>

namespace lorascope {

LrScaling parse_lr_scaling(const std::string& name) {
  if (name == "none") return LrScaling::None;
  if (name == "original") return LrScaling::Original;
  if (name == "match_adamw_rms") return LrScaling::MatchAdamwRms;
  throw std::invalid_argument("expected one of none, original, match_adamw_rms, got \"" + name +
                              "\"");
}

double muon_lr_scale(int64_t rows, int64_t cols, LrScaling scaling) {
  switch (scaling) {
    case LrScaling::None: return 1.0;
    case LrScaling::Original:
      return std::sqrt(std::max(1.0, static_cast<double>(rows) / static_cast<double>(cols)));
    case LrScaling::MatchAdamwRms:
      return 0.2 * std::sqrt(static_cast<double>(std::max(rows, cols)));
  }
  return 1.0;
}

at::Tensor muon_direction(const at::Tensor& grad, at::Tensor& momentum_buffer,
                          const MuonOptions& options) {
  if (options.momentum == 0.0) return orthogonalize(grad, options.ortho);
  if (!momentum_buffer.defined()) {
    momentum_buffer = grad.clone();
  } else {
    momentum_buffer.mul_(options.momentum).add_(grad);
  }
  if (options.nesterov) return orthogonalize(grad.add(momentum_buffer, options.momentum), options.ortho);
  return orthogonalize(momentum_buffer, options.ortho);
}

Muon::Muon(std::vector<at::Tensor> params, MuonOptions options)
    : Optimizer(std::move(params), options.lr), options_(options), momentum_(params_.size()) {
  if (!(options_.momentum >= 0.0 && options_.momentum < 1.0)) {
    throw std::invalid_argument("muon: momentum must be in [0, 1), got " +
                                std::to_string(options_.momentum));
  }
  for (size_t i = 0; i < params_.size(); ++i) {
    if (params_[i].dim() != 2) {
      throw std::invalid_argument("muon: parameter " + std::to_string(i) +
                                  " is not a matrix (shape " + c10::str(params_[i].sizes()) +
                                  "); route it to AdamW with the hybrid optimizer");
    }
  }
  register_buffers({{"momentum", &momentum_}});
}

void Muon::step() {
  check_finite_lr();
  at::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    auto& p = params_[i];
    const auto& g = p.grad();
    if (!g.defined()) continue;
    auto direction = muon_direction(g, momentum_[i], options_);
    if (options_.weight_decay != 0.0) p.mul_(1.0 - lr_ * options_.weight_decay);
    p.add_(direction, -lr_ * muon_lr_scale(p.size(0), p.size(1), options_.lr_scaling));
  }
  ++step_;
}

}  // namespace lorascope
