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
//       optim.muon_on A | B (LoRA): that factor -> muon / specgd / normuon at optim.lr,
//                  the other factor ("adapter_B" / "adapter_A") -> adamw at optim.adamw_lr
//   optim.name normuon: as muon, with NorMuon in place of Muon
//   optim.name lora_fa (LoRA): adapter_A -> frozen (never changes after init; its gradient is
//                  still computed and ignored), adapter_B + trained_in_full -> HF AdamW on
//                  LoRA-FA's preconditioned B gradient (optim/riemannian_lora.h lora_fa_options)
//   otherwise: every trainable parameter -> that optimizer at optim.lr ("all"), except
//       optim.lora_plus_ratio != 1: adapter_B -> group "adapter_B" at ratio x optim.lr
//       optim.precondition riemannian: "all" preconditions every adapter pair's gradients
//
// Group names are the state prefixes in optimizer.pt, so a resumed run must route the same way.
// optim.adamw_lr and optim.adamw_weight_decay apply to the AdamW side of every Muon/SpecGD run.
#pragma once

#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

#include "models/parameter_roles.h"
#include "optim/optimizer.h"
#include "optim/riemannian_lora.h"

namespace lorascope {

struct ParamGroup {
  std::string name;                  // "adapters", "trained_in_full", "hidden", "rest", "all"
  std::string optimizer;             // muon | specgd | normuon | adamw | adamw_hf | sgd | gd | frozen
  std::vector<ParameterRole> roles;  // the parameters it takes
  double lr_multiplier = 1.0;        // of its base rate (LoRA+ puts the B factors at a ratio)
  bool adamw_side = false;           // base rate optim.adamw_lr (and adamw_weight_decay)
  std::string precondition = "none";  // riemannian | lora_fa: wraps the optimizer (needs pairs)
  // Filled by route_parameters() for a preconditioned group: each adapter with a factor in it.
  std::vector<LoraPair> pairs;
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
