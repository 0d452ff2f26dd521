// Parameter groups, each stepped by its own optimizer under one learning-rate schedule: torch.optim's
// param_groups, generalised to a different algorithm per group (Muon on the matrices, AdamW on the
// rest). Which tensor belongs to which group is the caller's decision (the trainer's routing,
// trainer/optimizer_routing.h); this class only steps, rescales and saves them.
//
// State: each group's state dict under "<group name>.", plus "step". States saved before groups
// (one optimizer's, or Hybrid's "muon." / "adamw.") load too.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "optim/optimizer.h"

namespace lorascope {

struct OptimizerGroup {
  std::string name;  // key prefix of its state, e.g. "adapters"
  std::unique_ptr<Optimizer> optimizer;
};

class GroupedOptimizer : public Optimizer {
 public:
  // Group names must be distinct and non-empty; a group may hold no tensors.
  explicit GroupedOptimizer(std::vector<OptimizerGroup> groups);
  void step() override;
  // "<group>:<optimizer>" joined by "+", e.g. "adapters:muon+trained_in_full:adamw".
  std::string name() const override;
  void set_lr_factor(double factor) override;
  TensorDict state_dict() const override;
  void load_state_dict(const TensorDict& state) override;
  const std::vector<OptimizerGroup>& groups() const { return groups_; }

 private:
  TensorDict legacy_state(const TensorDict& state, const OptimizerGroup& g) const;
  std::vector<OptimizerGroup> groups_;
};

}  // namespace lorascope
