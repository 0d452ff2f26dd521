// Which role every parameter of a model plays in training, decided once per model (PEFT decides
// per module once, and saving, loading and optimizing all follow). Freezing, optimizer routing
// (trainer/optimizer_routing.h), checkpoints, the spectral monitor and PEFT export read this
// table instead of matching names.
//
//   adapter_A / adapter_B   a LoRA factor of a lorascope::Linear that carries an adapter; linked
//                           to its adapter (name = module path, the pair, its scaling)
//   trained_in_full         LoRA fine-tuning: a parameter of a module in modules_to_save (the
//                           classification head by default)
//   frozen                  LoRA fine-tuning: every other base parameter
//   hidden_matrix           full training: a 2-D weight inside the network (Muon's share)
//   embedding / head / norm_or_bias
//                           full training: what Muon's authors leave to AdamW
#pragma once

#include <torch/nn/module.h>

#include <string>
#include <vector>

#include "models/lora.h"

namespace lorascope {

enum class ParameterRole { AdapterA, AdapterB, TrainedInFull, Frozen, HiddenMatrix, Embedding, Head, NormOrBias };
const char* role_name(ParameterRole role);

struct RoledParameter {
  std::string name;   // qualified parameter name, e.g. "model.layers.0.self_attn.q_proj.lora_A.weight"
  at::Tensor tensor;  // the live parameter
  ParameterRole role;
  int adapter = -1;   // adapter_A / adapter_B: index into ParameterRoles::adapters
  bool trains() const { return role != ParameterRole::Frozen; }
};

struct RoleRules {
  // false: LoRA fine-tuning (adapters + trained_in_full train, the rest is frozen);
  // true: full training (every non-adapter parameter trains, classified for the optimizer).
  bool full_training = false;
  // Parameter-name prefixes ("score.") of the modules trained in full (modules_to_save_prefixes()).
  std::vector<std::string> trained_in_full;
  // The model's head module ("lm_head", "score", "classifier"; SequenceModel::head_module()).
  std::string head_module;
};

struct ParameterRoles {
  std::vector<RoledParameter> parameters;  // model order
  std::vector<AdapterRef> adapters;        // module order; A and B are the live factors
  // LoRA fine-tuning: the modules trained in full (RoleRules::trained_in_full without the final
  // ".", each once, none inside another), what a PEFT export lists as modules_to_save.
  std::vector<std::string> trained_in_full_modules;

  std::vector<at::Tensor> trainable() const;
  std::vector<std::string> trainable_names() const;
  // Nullptr for a name that is not a parameter of the model.
  const RoledParameter* find(const std::string& name) const;
  bool is_adapter_factor(const std::string& name) const;
  int64_t trainable_numel() const;
};

// The table of `model` under `rules`. Adapters are found by structure (a Linear whose adapter is
// attached), never by parameter name.
ParameterRoles parameter_roles(torch::nn::Module& model, const RoleRules& rules = {});
// Sets requires_grad from the table: true exactly for the parameters that train.
void apply_roles(const ParameterRoles& roles);

}  // namespace lorascope
