// Muon / spectral gradient descent (muon-lora-uniform-growth.md eq. (1)):
//
//   M_t     = G_t + mu * M_{t-1}                       (heavy-ball sum, as in the paper)
//   D_t     = nesterov ? G_t + mu * M_t : M_t
//   W_{t+1} = (1 - lr * wd) W_t - lr * scale(W) * T(D_t)
//
// mu = 0 is SpecGD. T is any orthogonalizer (orthogonalize.h). KellerJordan's Muon and
// torch.optim.Muon keep an EMA buffer (1 - mu) G + mu M instead of the sum; because T is
// invariant to scaling its input (exactly for exact T and Newton-Schulz, up to beta for T_beta),
// both give the same updates.
//
// scale(W) for a rows x cols parameter:
//   none             1
//   original         sqrt(max(1, rows / cols))        (KellerJordan/Muon)
//   match_adamw_rms  0.2 * sqrt(max(rows, cols))      (Moonlight: update RMS ~ AdamW's 0.2)
//
// Only for 2-D matrices: embeddings, norms, biases and heads belong to AdamW (hybrid.h).
#pragma once

#include <functional>
#include <string>

#include "optim/optimizer.h"
#include "optim/orthogonalize.h"

namespace lorascope {

enum class LrScaling { None, Original, MatchAdamwRms };
LrScaling parse_lr_scaling(const std::string& name);
double muon_lr_scale(int64_t rows, int64_t cols, LrScaling scaling);

// The defaults are Muon as its users know it (KellerJordan/Muon, torch.optim.Muon): momentum
// 0.95, Nesterov, 5 Newton-Schulz steps. specgd_options() gives the paper's exact SpecGD. The
// config schema (trainer/optimizer_factory.cpp) takes its momentum, Nesterov and orthogonalizer
// defaults from these two, and ns_steps. Not lr: optim.lr is one key for every
// optimizer, default 0.01, and a config always sets lr here from it; 0.02 (KellerJordan/Muon's)
// applies only where Muon is built directly (benchmarks, tests).
struct MuonOptions {
  double lr = 0.02;
  double momentum = 0.95;  // 0 gives SpecGD
  bool nesterov = true;
  OrthoOptions ortho{OrthoKind::NewtonSchulz, 0.0, 5};
  LrScaling lr_scaling = LrScaling::None;
  double weight_decay = 0.0;  // decoupled
  // Same-shape matrices are stacked and orthogonalized as one batch (a few kernel launches per
  // shape instead of a loop over parameters); false keeps the per-parameter loop (benchmarks).
  bool grouped = true;
};

// SpecGD (muon-lora-uniform-growth.md eq. (1) with mu = 0): exact U V^T, no momentum.
MuonOptions specgd_options();

// Data-parallel Muon without repeating the orthogonalization on every rank (every rank holds
// the same all-reduced gradients): within each group of same-shape matrices the matrices are
// dealt to the ranks round-robin (continuing across groups, so singleton groups spread too), each
// rank runs the orthogonalizer on its share as one batch, and one all-gather per dtype hands every
// rank all directions. Momentum buffers stay replicated (elementwise, cheap), so any rank's state
// is the whole optimizer state. The update equals the unsharded one up to the batching of the
// orthogonalizer's matmuls.
struct MuonSharding {
  int rank = 0, world_size = 1;
  // Every rank's `mine` in rank order; `mine` has the same shape and dtype on every rank.
  std::function<std::vector<at::Tensor>(const at::Tensor& mine)> all_gather;
};

// The update direction T(D_t), advancing the momentum buffer in place (undefined buffer =
// first step). A pure function of its inputs so that grouped or sharded steps can reuse it.
at::Tensor muon_direction(const at::Tensor& grad, at::Tensor& momentum_buffer,
                          const MuonOptions& options);

class Muon : public Optimizer {
 public:
  Muon(std::vector<at::Tensor> params, MuonOptions options);
  void step() override;
  std::string name() const override { return options_.momentum == 0.0 ? "specgd" : "muon"; }
  const MuonOptions& options() const { return options_; }
  // world_size 1 (the default) steps alone; otherwise every rank must call step() together.
  void set_sharding(MuonSharding sharding);

 private:
  void step_one(size_t i);
  void step_group(const std::vector<size_t>& members);
  void step_sharded(const std::vector<std::vector<size_t>>& groups);
  // Advances the members' momentum buffers; returns the stacked orthogonalizer input (k, rows, cols).
  at::Tensor stacked_inputs(const std::vector<size_t>& members);
  void apply(const std::vector<size_t>& members, const std::vector<at::Tensor>& directions);

  MuonOptions options_;
  std::vector<at::Tensor> momentum_;
  MuonSharding sharding_;
};

}  // namespace lorascope
