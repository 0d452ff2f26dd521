#include "optim/muon.h"

#include <ATen/Parallel.h>

#include "optim/gram_newton_schulz.h"
#include "optim/small_matrix.h"
#include "optim/thin_muon_step.h"

#include <ATen/core/grad_mode.h>  // at::NoGradGuard (not in <ATen/ATen.h> from LibTorch 2 on)

#include <cmath>
#include <map>
#include <set>
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

MuonOptions specgd_options() {
  MuonOptions o;
  o.momentum = 0.0;
  o.nesterov = false;
  o.ortho = OrthoOptions{OrthoKind::Exact, 0.0, 5};
  return o;
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

namespace {
// SpecGD (exact or smoothed T, no momentum) on a small CPU matrix: the update goes straight
// into p (small::add_spectral_map), with no direction tensor and no ATen op. Same arithmetic as
// the separate form (p.mul_(decay); p.add_(T(G), -step)).
bool small_spectral_step_applies(const at::Tensor& p, const MuonOptions& options) {
  const auto& g = p.grad();
  const auto kind = options.ortho.kind;
  return options.momentum == 0.0 && (kind == OrthoKind::Exact || kind == OrthoKind::Smoothed) &&
         (kind == OrthoKind::Exact || options.ortho.beta >= 0) && g.defined() && small::eligible(g) &&
         p.is_contiguous() && g.scalar_type() == p.scalar_type() && g.sizes() == p.sizes();
}
}  // namespace

void Muon::step_one(size_t i) {
  auto& p = params_[i];
  if (thin_muon_step_applies(p, options_)) {
    thin_muon_step(p, momentum_[i], options_, lr_);
    return;
  }
  if (small_spectral_step_applies(p, options_)) {
    const double beta = options_.ortho.kind == OrthoKind::Exact ? 0.0 : options_.ortho.beta;
    small::add_spectral_map(p.grad(), beta, 1.0 - lr_ * options_.weight_decay,
                            -lr_ * muon_lr_scale(p.size(0), p.size(1), options_.lr_scaling), p);
    return;
  }
  auto direction = muon_direction(p.grad(), momentum_[i], options_);
  if (options_.weight_decay != 0.0) p.mul_(1.0 - lr_ * options_.weight_decay);
  p.add_(direction, -lr_ * muon_lr_scale(p.size(0), p.size(1), options_.lr_scaling));
}

// The per-parameter arithmetic of step_one on a list: foreach kernels for the momentum and
// the parameter updates, one stacked batch through the orthogonalizer.
at::Tensor Muon::stacked_inputs(const std::vector<size_t>& members) {
  std::vector<at::Tensor> grads, bufs;
  for (size_t i : members) grads.push_back(params_[i].grad());
  if (options_.momentum == 0.0) return at::stack(grads);
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
  return options_.nesterov ? at::stack(grads).add_(at::stack(bufs), options_.momentum)
                           : at::stack(bufs);
}

void Muon::apply(const std::vector<size_t>& members, const std::vector<at::Tensor>& directions) {
  std::vector<at::Tensor> params;
  for (size_t i : members) params.push_back(params_[i]);
  const auto& p0 = params_[members.front()];
  if (options_.weight_decay != 0.0) at::_foreach_mul_(params, 1.0 - lr_ * options_.weight_decay);
  at::_foreach_add_(params, directions,
                    -lr_ * muon_lr_scale(p0.size(0), p0.size(1), options_.lr_scaling));
}

void Muon::step_group(const std::vector<size_t>& members) {
  apply(members, orthogonalize(stacked_inputs(members), options_.ortho).unbind(0));
}

void Muon::set_sharding(MuonSharding sharding) {
  if (sharding.world_size < 1 || sharding.rank < 0 || sharding.rank >= sharding.world_size) {
    throw std::invalid_argument("muon: sharding: rank " + std::to_string(sharding.rank) +
                                " outside world size " + std::to_string(sharding.world_size));
  }
  if (sharding.world_size > 1 && !sharding.all_gather) {
    throw std::invalid_argument("muon: sharding: world size > 1 needs an all_gather");
  }
  sharding_ = std::move(sharding);
}

void Muon::step_sharded(const std::vector<std::vector<size_t>>& groups) {
  const int64_t world = sharding_.world_size;
  // Member j of group g belongs to rank (first_g + j) % world, first_g = members of the groups
  // before g: every rank derives the same deal, so no metadata travels.
  struct Share {
    size_t group;
    std::vector<int64_t> slots;  // positions within the group
  };
  std::vector<std::vector<Share>> shares(static_cast<size_t>(world));  // [rank] in group order
  std::vector<at::Tensor> inputs(groups.size());
  int64_t dealt = 0;
  for (size_t g = 0; g < groups.size(); ++g) {
    inputs[g] = stacked_inputs(groups[g]);  // every rank advances every momentum buffer
    const auto k = static_cast<int64_t>(groups[g].size());
    for (int64_t r = 0; r < world; ++r) {
      Share share{g, {}};
      for (int64_t j = ((r - dealt) % world + world) % world; j < k; j += world) share.slots.push_back(j);
      if (!share.slots.empty()) shares[static_cast<size_t>(r)].push_back(std::move(share));
    }
    dealt += k;
  }
  // Orthogonalize this rank's share, flattened per dtype for one all-gather each.
  auto dtype_key = [&](size_t g) { return c10::str(inputs[g].scalar_type()); };
  std::map<std::string, std::vector<at::Tensor>> mine;
  for (const auto& share : shares[static_cast<size_t>(sharding_.rank)]) {
    const auto& in = inputs[share.group];
    at::Tensor out;
    if (share.slots.size() == 1) {
      out = orthogonalize(in[share.slots[0]], options_.ortho);  // as step_one would
    } else {
      auto idx = at::tensor(share.slots, at::TensorOptions(at::kLong).device(in.device()));
      out = orthogonalize(in.index_select(0, idx), options_.ortho);
    }
    mine[dtype_key(share.group)].push_back(out.reshape({-1}));
  }
  auto numel_of = [&](int64_t r, const std::string& key) {
    int64_t n = 0;
    for (const auto& share : shares[static_cast<size_t>(r)]) {
      if (dtype_key(share.group) == key) {
        n += static_cast<int64_t>(share.slots.size()) * inputs[share.group].size(1) * inputs[share.group].size(2);
      }
    }
    return n;
  };
  std::vector<std::vector<at::Tensor>> directions(groups.size());
  for (size_t g = 0; g < groups.size(); ++g) directions[g].resize(groups[g].size());
  std::set<std::string> keys;
  for (size_t g = 0; g < groups.size(); ++g) keys.insert(dtype_key(g));
  for (const auto& key : keys) {
    int64_t longest = 0;
    for (int64_t r = 0; r < world; ++r) longest = std::max(longest, numel_of(r, key));
    if (longest == 0) continue;
    const auto& parts = mine[key];
    at::TensorOptions opts;
    for (size_t g = 0; g < groups.size(); ++g) {
      if (dtype_key(g) == key) opts = inputs[g].options();
    }
    auto flat = parts.empty() ? at::zeros({longest}, opts) : at::cat(parts);
    if (flat.numel() < longest) flat = at::cat({flat, at::zeros({longest - flat.numel()}, opts)});
    auto gathered = world == 1 ? std::vector<at::Tensor>{flat} : sharding_.all_gather(flat);
    for (int64_t r = 0; r < world; ++r) {
      int64_t offset = 0;
      for (const auto& share : shares[static_cast<size_t>(r)]) {
        if (dtype_key(share.group) != key) continue;
        const auto shape = inputs[share.group].sizes().slice(1);  // (rows, cols) of the (k, rows, cols) stack
        const int64_t n = shape[0] * shape[1];
        for (int64_t j : share.slots) {
          directions[share.group][static_cast<size_t>(j)] =
              gathered[static_cast<size_t>(r)].narrow(0, offset, n).view(shape);
          offset += n;
        }
      }
    }
  }
  for (size_t g = 0; g < groups.size(); ++g) apply(groups[g], directions[g]);
}

void Muon::step() {
  check_finite_lr();
  at::NoGradGuard no_grad;
  const bool sharded = sharding_.world_size > 1 || sharding_.all_gather;
  // Groups of same shape, dtype and device among the parameters that have a gradient.
  std::map<std::string, std::vector<size_t>> groups;
  std::vector<size_t> thin;
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto& p = params_[i];
    if (!p.grad().defined()) continue;
    // On the CPU a thin factor's step beats any stacking (bench: muon-step): the fused kernels
    // where they apply, else the Gram form per factor; and so does a small matrix's SpecGD step
    // (no ATen op at all).
    const bool thin_gram = options_.ortho.kind == OrthoKind::NewtonSchulz && gram_newton_schulz_applies(p);
    if (!sharded && thin_muon_step_applies(p, options_)) {
      thin.push_back(i);
    } else if (!sharded && (!options_.grouped || thin_gram || small_spectral_step_applies(p, options_))) {
      step_one(i);
    } else {
      groups[c10::str(p.sizes(), p.scalar_type(), p.device())].push_back(i);
    }
  }
  // A thin factor's step is single-threaded and bound by memory: one factor per thread. Each
  // factor's arithmetic is the same whichever thread runs it, so the result does not depend on
  // the thread count.
  at::parallel_for(0, static_cast<int64_t>(thin.size()), 1, [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; ++k) step_one(thin[static_cast<size_t>(k)]);
  });
  if (sharded) {
    std::vector<std::vector<size_t>> ordered;
    for (auto& [key, members] : groups) ordered.push_back(std::move(members));
    step_sharded(ordered);
  } else {
    for (const auto& [key, members] : groups) {
      if (members.size() == 1) {
        step_one(members.front());
      } else {
        step_group(members);
      }
    }
  }
  ++step_;
}

}  // namespace lorascope
