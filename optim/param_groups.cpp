#include "optim/param_groups.h"

#include <set>
#include <stdexcept>

namespace lorascope {

namespace {
std::vector<at::Tensor> all_params(const std::vector<OptimizerGroup>& groups) {
  std::vector<at::Tensor> all;
  for (const auto& g : groups) {
    if (!g.optimizer) throw std::invalid_argument("optimizer group \"" + g.name + "\": no optimizer");
    all.insert(all.end(), g.optimizer->params().begin(), g.optimizer->params().end());
  }
  return all;
}
// The first group's rate stands for the whole (what a metrics line reports as "lr").
double first_lr(const std::vector<OptimizerGroup>& groups) {
  if (groups.empty()) throw std::invalid_argument("grouped optimizer: no groups");
  return groups.front().optimizer ? groups.front().optimizer->base_lr() : 0.0;
}
}  // namespace

GroupedOptimizer::GroupedOptimizer(std::vector<OptimizerGroup> groups)
    : Optimizer(all_params(groups), first_lr(groups)), groups_(std::move(groups)) {
  std::set<std::string> names;
  for (const auto& g : groups_) {
    if (g.name.empty() || !names.insert(g.name).second) {
      throw std::invalid_argument("grouped optimizer: group names must be distinct and non-empty, got \"" +
                                  g.name + "\" twice or empty");
    }
  }
}

void GroupedOptimizer::step() {
  for (auto& g : groups_) g.optimizer->step();
  ++step_;
}

std::string GroupedOptimizer::name() const {
  std::string out;
  for (const auto& g : groups_) out += (out.empty() ? "" : "+") + g.name + ":" + g.optimizer->name();
  return out;
}

void GroupedOptimizer::set_lr_factor(double factor) {
  Optimizer::set_lr_factor(factor);
  for (auto& g : groups_) g.optimizer->set_lr_factor(factor);
}

TensorDict GroupedOptimizer::state_dict() const {
  TensorDict state;
  for (const auto& g : groups_) {
    auto one = with_prefix(g.optimizer->state_dict(), g.name + ".");
    state.insert(one.begin(), one.end());
  }
  state["step"] = at::scalar_tensor(static_cast<int64_t>(step_), at::kLong);
  return state;
}

// The state of a group as saved before groups had names: one optimizer's unprefixed state (a single
// group), or Hybrid's "muon." / "adamw." halves (a Muon group and an AdamW group).
TensorDict GroupedOptimizer::legacy_state(const TensorDict& state, const OptimizerGroup& g) const {
  if (groups_.size() == 1) return state;
  const std::string kind = g.optimizer->name() == "adamw" ? "adamw" : "muon";
  return strip_prefix(state, kind + ".");
}

void GroupedOptimizer::load_state_dict(const TensorDict& state) {
  for (auto& g : groups_) {
    auto mine = strip_prefix(state, g.name + ".");
    if (mine.empty()) mine = legacy_state(state, g);
    if (mine.empty()) {
      throw std::runtime_error("optimizer state: no entries for group \"" + g.name +
                               "\" (saved by another optimizer setup?)");
    }
    g.optimizer->load_state_dict(mine);
  }
  Optimizer::load_state_dict(state);
}

}  // namespace lorascope
