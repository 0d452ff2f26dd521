// Which optimizer trains which parameters of a transformer, as data: a list of groups, each a set
// of parameter roles (models/parameter_roles.h), an optimizer (an optim.name value) and a learning
// rate (optim.lr or optim.adamw_lr, times a multiplier). Routing reads only the role table, never
// parameter names, and every trainable parameter must land in exactly one group.
//
//   optim.name muon / specgd / hybrid:
//       LoRA:      adapters (adapter_A, adapter_B)  -> muon / specgd at optim.lr
//                  trained_in_full                    -> adamw at optim.adamw_lr
//       pretrain:  hidden_matrix                      -> muon / specgd at optim.lr
//                  embedding, head, norm_or_bias      -> adamw at optim.adamw_lr
//   otherwise: every trainable parameter -> that optimizer at optim.lr
//
// optim.adamw_lr and optim.adamw_weight_decay apply to the AdamW side of every Muon/SpecGD run.
#pragma once

#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

#include "models/parameter_roles.h"
#include "optim/optimizer.h"

namespace lorascope {

struct ParamGroup {
  std::string name;                  // "adapters", "trained_in_full", "hidden", "rest", "all"
  std::string optimizer;             // muon | specgd | adamw | sgd | gd
  std::vector<ParameterRole> roles;  // the parameters it takes
  double lr_multiplier = 1.0;        // of its base rate (LoRA+ puts the B factors at a ratio)
  bool adamw_side = false;           // base rate optim.adamw_lr (and adamw_weight_decay)
  // Filled by route_parameters():
  std::vector<std::string> names;
  std::vector<at::Tensor> params;
};

// The groups optim.* asks for (unfilled). full_training: pretrain (no adapters).
std::vector<ParamGroup> routing_rules(const nlohmann::json& optim, bool full_training);
// Fills each group with the trainable parameters of its roles; throws std::logic_error naming a
// trainable parameter that no group (or more than one) takes. Empty groups are dropped.
std::vector<ParamGroup> route_parameters(const ParameterRoles& roles, std::vector<ParamGroup> groups);
// One optimizer over the filled groups (a GroupedOptimizer with one member per group).
std::unique_ptr<Optimizer> make_routed_optimizer(const nlohmann::json& optim, const std::vector<ParamGroup>& groups);
// For summary.json: per group its optimizer with the settings that ran, lr, roles and sizes.
nlohmann::json describe_routing(const nlohmann::json& optim, const std::vector<ParamGroup>& groups);

}  // namespace lorascope
