#include "optim/hybrid.h"

namespace lorascope {

ParamSplit split_for_muon(const std::vector<at::Tensor>& params) {
  ParamSplit split;
  for (const auto& p : params) (p.dim() == 2 ? split.muon : split.adamw).push_back(p);
  return split;
}

namespace {
std::vector<at::Tensor> concat(const ParamSplit& s) {
  auto all = s.muon;
  all.insert(all.end(), s.adamw.begin(), s.adamw.end());
  return all;
}
}  // namespace

Hybrid::Hybrid(ParamSplit split, MuonOptions muon, AdamWOptions adamw)
    : Optimizer(concat(split), muon.lr),
      muon_(std::make_unique<Muon>(split.muon, muon)),
      adamw_(std::make_unique<AdamW>(split.adamw, adamw)) {}

void Hybrid::step() {
  muon_->step();
  adamw_->step();
  ++step_;
}

void Hybrid::set_lr_factor(double factor) {
  Optimizer::set_lr_factor(factor);
  muon_->set_lr_factor(factor);
  adamw_->set_lr_factor(factor);
}

TensorDict Hybrid::state_dict() const {
  auto state = with_prefix(muon_->state_dict(), "muon.");
  auto adam = with_prefix(adamw_->state_dict(), "adamw.");
  state.insert(adam.begin(), adam.end());
  state["step"] = at::scalar_tensor(static_cast<int64_t>(step_), at::kLong);
  return state;
}

void Hybrid::load_state_dict(const TensorDict& state) {
  muon_->load_state_dict(strip_prefix(state, "muon."));
  adamw_->load_state_dict(strip_prefix(state, "adamw."));
  Optimizer::load_state_dict(state);
}

}  // namespace lorascope
