#include "optim/muon.h"

#include <cmath>
#include <map>
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

void Muon::step_one(size_t i) {
  auto& p = params_[i];
  auto direction = muon_direction(p.grad(), momentum_[i], options_);
  if (options_.weight_decay != 0.0) p.mul_(1.0 - lr_ * options_.weight_decay);
  p.add_(direction, -lr_ * muon_lr_scale(p.size(0), p.size(1), options_.lr_scaling));
}

// The per-parameter arithmetic of step_one on a list: foreach kernels for the momentum and
// the parameter updates, one stacked batch through the orthogonalizer.
void Muon::step_group(const std::vector<size_t>& members) {
  std::vector<at::Tensor> params, grads, bufs;
  for (size_t i : members) {
    params.push_back(params_[i]);
    grads.push_back(params_[i].grad());
  }
  at::Tensor stacked;
  if (options_.momentum == 0.0) {
    stacked = at::stack(grads);
  } else {
    // M <- mu M + G, or M <- G where a buffer starts this step (as muon_direction does).
    std::vector<at::Tensor> old_bufs, old_grads;
    for (size_t k = 0; k < members.size(); ++k) {
      auto& m = momentum_[members[k]];
      if (m.defined()) {
        old_bufs.push_back(m);
        old_grads.push_back(grads[k]);
      } else {
        m = grads[k].clone();
      }
      bufs.push_back(m);
    }
    if (!old_bufs.empty()) {
      at::_foreach_mul_(old_bufs, options_.momentum);
      at::_foreach_add_(old_bufs, old_grads);
    }
    stacked = options_.nesterov ? at::stack(grads).add_(at::stack(bufs), options_.momentum)
                                : at::stack(bufs);
  }
  auto directions = orthogonalize(stacked, options_.ortho).unbind(0);
  const auto& p0 = params_[members.front()];
  if (options_.weight_decay != 0.0) at::_foreach_mul_(params, 1.0 - lr_ * options_.weight_decay);
  at::_foreach_add_(params, directions,
                    -lr_ * muon_lr_scale(p0.size(0), p0.size(1), options_.lr_scaling));
}

void Muon::step() {
  check_finite_lr();
  at::NoGradGuard no_grad;
  // Groups of same shape, dtype and device among the parameters that have a gradient.
  std::map<std::string, std::vector<size_t>> groups;
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto& p = params_[i];
    if (!p.grad().defined()) continue;
    if (!options_.grouped) {
      step_one(i);
      continue;
    }
    groups[c10::str(p.sizes(), p.scalar_type(), p.device())].push_back(i);
  }
  for (const auto& [key, members] : groups) {
    if (members.size() == 1) {
      step_one(members.front());
    } else {
      step_group(members);
    }
  }
  ++step_;
}

}  // namespace lorascope
