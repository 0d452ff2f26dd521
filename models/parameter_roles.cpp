#include "models/parameter_roles.h"

#include <algorithm>
#include <map>

#include "models/linear.h"
#include "models/transformer_layers.h"

namespace lorascope {

const char* role_name(ParameterRole role) {
  switch (role) {
    case ParameterRole::AdapterA: return "adapter_A";
    case ParameterRole::AdapterB: return "adapter_B";
    case ParameterRole::TrainedInFull: return "trained_in_full";
    case ParameterRole::Frozen: return "frozen";
    case ParameterRole::HiddenMatrix: return "hidden_matrix";
    case ParameterRole::Embedding: return "embedding";
    case ParameterRole::Head: return "head";
    case ParameterRole::NormOrBias: return "norm_or_bias";
  }
  return "?";
}

namespace {
bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }
}  // namespace

ParameterRoles parameter_roles(torch::nn::Module& model, const RoleRules& rules) {
  ParameterRoles out;
  // Adapter factors and embedding tables by the module that owns them (identity of the tensor).
  std::map<const void*, std::pair<ParameterRole, int>> factor_of;
  std::map<const void*, bool> embedding;
  for (const auto& item : model.named_modules("", /*include_self=*/false)) {
    if (auto lin = std::dynamic_pointer_cast<Linear>(item.value())) {
      if (!lin->has_adapter()) continue;
      const int index = static_cast<int>(out.adapters.size());
      out.adapters.push_back({item.key(), lin->lora_A->weight, lin->lora_B->weight, lin->scaling});
      factor_of[lin->lora_A->weight.unsafeGetTensorImpl()] = {ParameterRole::AdapterA, index};
      factor_of[lin->lora_B->weight.unsafeGetTensorImpl()] = {ParameterRole::AdapterB, index};
    } else if (auto emb = std::dynamic_pointer_cast<Embedding>(item.value())) {
      embedding[emb->weight.unsafeGetTensorImpl()] = true;
    }
  }
  const std::string head_prefix = rules.head_module.empty() ? std::string() : rules.head_module + ".";
  for (const auto& p : model.named_parameters(/*recurse=*/true)) {
    RoledParameter rp{p.key(), p.value(), ParameterRole::Frozen, -1};
    const void* impl = p.value().unsafeGetTensorImpl();
    if (auto it = factor_of.find(impl); it != factor_of.end()) {
      rp.role = it->second.first;
      rp.adapter = it->second.second;
    } else if (rules.full_training) {
      if (embedding.count(impl)) {
        rp.role = ParameterRole::Embedding;
      } else if (!head_prefix.empty() && starts_with(p.key(), head_prefix)) {
        rp.role = ParameterRole::Head;
      } else {
        rp.role = p.value().dim() == 2 ? ParameterRole::HiddenMatrix : ParameterRole::NormOrBias;
      }
    } else {
      for (const auto& prefix : rules.trained_in_full) {
        if (starts_with(p.key(), prefix)) rp.role = ParameterRole::TrainedInFull;
      }
    }
    out.parameters.push_back(std::move(rp));
  }
  if (!rules.full_training) {
    // A module inside another one listed ("classifier.dense" of a loaded adapter beside the head
    // "classifier") is saved with it.
    const auto inside = [&](const std::string& prefix) {
      for (const auto& other : rules.trained_in_full) {
        if (other != prefix && starts_with(prefix, other)) return true;
      }
      return false;
    };
    for (const auto& prefix : rules.trained_in_full) {
      const std::string module = prefix.substr(0, prefix.size() - (prefix.empty() || prefix.back() != '.' ? 0 : 1));
      if (module.empty() || inside(prefix)) continue;
      auto& list = out.trained_in_full_modules;
      if (std::find(list.begin(), list.end(), module) == list.end()) list.push_back(module);
    }
  }
  return out;
}

void apply_roles(const ParameterRoles& roles) {
  for (const auto& p : roles.parameters) {
    at::Tensor t = p.tensor;
    t.set_requires_grad(p.trains());
  }
}

std::vector<at::Tensor> ParameterRoles::trainable() const {
  std::vector<at::Tensor> out;
  for (const auto& p : parameters) {
    if (p.trains()) out.push_back(p.tensor);
  }
  return out;
}

std::vector<std::string> ParameterRoles::trainable_names() const {
  std::vector<std::string> out;
  for (const auto& p : parameters) {
    if (p.trains()) out.push_back(p.name);
  }
  return out;
}

const RoledParameter* ParameterRoles::find(const std::string& name) const {
  for (const auto& p : parameters) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

bool ParameterRoles::is_adapter_factor(const std::string& name) const {
  const auto* p = find(name);
  return p && (p->role == ParameterRole::AdapterA || p->role == ParameterRole::AdapterB);
}

int64_t ParameterRoles::trainable_numel() const {
  int64_t n = 0;
  for (const auto& p : parameters) n += p.trains() ? p.tensor.numel() : 0;
  return n;
}

}  // namespace lorascope
