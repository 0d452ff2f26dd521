#include "trainer/optimizer_routing.h"

#include <algorithm>
#include <map>
#include <stdexcept>

#include "optim/adamw.h"
#include "optim/adamw_hf.h"
#include "optim/muon.h"
#include "optim/normuon.h"
#include "optim/param_groups.h"
#include "optim/sgd.h"
#include "trainer/optimizer_factory.h"

namespace lorascope {

using nlohmann::json;
using R = ParameterRole;

namespace {
ParamGroup group(std::string name, std::string optimizer, std::vector<ParameterRole> roles, bool adamw_side = false) {
  ParamGroup g;
  g.name = std::move(name);
  g.optimizer = std::move(optimizer);
  g.roles = std::move(roles);
  g.adamw_side = adamw_side;
  return g;
}
}  // namespace

std::vector<ParamGroup> routing_rules(const json& given, bool full_training) {
  const json o = resolved_optim(given);
  std::string name = o.at("name");
  if (name == "hybrid") name = "muon";
  if (name == "muon" || name == "specgd" || name == "normuon") {
    if (full_training) {
      return {group("hidden", name, {R::HiddenMatrix}),
              group("rest", "adamw", {R::Embedding, R::Head, R::NormOrBias}, true)};
    }
    const std::string on = o.at("muon_on");
    if (on == "both") {
      return {group("adapters", name, {R::AdapterA, R::AdapterB}),
              group("trained_in_full", "adamw", {R::TrainedInFull}, true)};
    }
    const bool a = on == "A";
    return {group(a ? "adapter_A" : "adapter_B", name, {a ? R::AdapterA : R::AdapterB}),
            group(a ? "adapter_B" : "adapter_A", "adamw", {a ? R::AdapterB : R::AdapterA}, true),
            group("trained_in_full", "adamw", {R::TrainedInFull}, true)};
  }
  if (name == "lora_fa") {
    auto rest = group("all", "adamw_hf", {R::AdapterB, R::TrainedInFull});
    rest.precondition = "lora_fa";
    return {group("adapter_A", "frozen", {R::AdapterA}), rest};
  }
  std::vector<ParameterRole> all = {R::AdapterA,     R::AdapterB,  R::TrainedInFull, R::HiddenMatrix,
                                    R::Embedding,    R::Head,      R::NormOrBias};
  const double ratio = o.at("lora_plus_ratio");
  if (ratio != 1.0) {
    // LoRA+: only B's rate changes (the paper; PEFT also moves biases to B's group).
    all.erase(std::find(all.begin(), all.end(), R::AdapterB));
    auto b = group("adapter_B", name, {R::AdapterB});
    b.lr_multiplier = ratio;
    return {group("all", name, all), b};
  }
  auto one = group("all", name, all);
  one.precondition = o.at("precondition");
  return {one};
}

std::vector<ParamGroup> route_parameters(const ParameterRoles& roles, std::vector<ParamGroup> groups) {
  for (const auto& p : roles.parameters) {
    if (!p.trains()) continue;
    ParamGroup* taken = nullptr;
    for (auto& g : groups) {
      if (std::find(g.roles.begin(), g.roles.end(), p.role) == g.roles.end()) continue;
      if (taken) {
        throw std::logic_error("optimizer routing: " + p.name + " (" + role_name(p.role) + ") is in two groups, " +
                               taken->name + " and " + g.name);
      }
      taken = &g;
    }
    if (!taken) {
      throw std::logic_error("optimizer routing: trainable parameter " + p.name + " (" + role_name(p.role) +
                             ") is in no optimizer group");
    }
    taken->names.push_back(p.name);
    taken->params.push_back(p.tensor);
  }
  for (auto& g : groups) {
    if (g.precondition == "none") continue;
    for (const auto& a : roles.adapters) {
      const auto holds = [&](const at::Tensor& t) {
        return std::any_of(g.params.begin(), g.params.end(), [&](const at::Tensor& p) { return p.is_same(t); });
      };
      if (holds(a.A) || holds(a.B)) g.pairs.push_back({a.A, a.B, a.scaling});
    }
  }
  groups.erase(std::remove_if(groups.begin(), groups.end(), [](const ParamGroup& g) { return g.params.empty(); }),
               groups.end());
  if (groups.empty()) throw std::logic_error("optimizer routing: the model has no trainable parameter");
  return groups;
}

namespace {
double base_lr(const json& o, const ParamGroup& g) {
  return (g.adamw_side ? o.at("adamw_lr").get<double>() : o.at("lr").get<double>()) * g.lr_multiplier;
}

// LoRA-FA's A factors: never stepped (the state holds only "step").
class Frozen : public Optimizer {
 public:
  explicit Frozen(std::vector<at::Tensor> params) : Optimizer(std::move(params), 0.0) {}
  void step() override { ++step_; }
  std::string name() const override { return "frozen"; }
};

std::unique_ptr<Optimizer> make_base(const json& o, const ParamGroup& g) {
  const double lr = base_lr(o, g);
  if (g.optimizer == "frozen") return std::make_unique<Frozen>(g.params);
  if (g.optimizer == "muon" || g.optimizer == "specgd" || g.optimizer == "normuon") {
    MuonOptions m = muon_side_options(o);
    m.lr = lr;
    if (g.optimizer == "normuon") return std::make_unique<NorMuon>(g.params, m, normuon_options(o));
    return std::make_unique<Muon>(g.params, m);
  }
  if (g.optimizer == "adamw_hf") {
    AdamWHFOptions h;
    h.lr = lr;
    h.beta1 = o.at("beta1");
    h.beta2 = o.at("beta2");
    h.eps = o.at("eps");
    h.weight_decay = o.at("weight_decay");
    return std::make_unique<AdamWHF>(g.params, h);
  }
  if (g.optimizer == "adamw") {
    AdamWOptions a = g.adamw_side ? adamw_side_options(o) : AdamWOptions{};
    if (!g.adamw_side) {
      a.beta1 = o.at("beta1");
      a.beta2 = o.at("beta2");
      a.eps = o.at("eps");
      a.weight_decay = o.at("weight_decay");
    }
    a.lr = lr;
    return std::make_unique<AdamW>(g.params, a);
  }
  json one = o;
  one["lr"] = lr;
  one["name"] = g.optimizer;
  return make_optimizer(one, g.params);  // sgd / gd
}

std::unique_ptr<Optimizer> make_one(const json& o, const ParamGroup& g) {
  auto base = make_base(o, g);
  if (g.precondition == "none") return base;
  RiemannianOptions r = g.precondition == "lora_fa" ? lora_fa_options() : RiemannianOptions{};
  if (g.precondition == "riemannian") r.delta = o.at("precondition_delta");
  return std::make_unique<RiemannianLora>(g.pairs, r, std::move(base));
}
}  // namespace

std::unique_ptr<Optimizer> make_routed_optimizer(const json& given, const std::vector<ParamGroup>& groups) {
  const json o = resolved_optim(given);
  std::vector<OptimizerGroup> members;
  for (const auto& g : groups) members.push_back({g.name, make_one(o, g)});
  return std::make_unique<GroupedOptimizer>(std::move(members));
}

json describe_routing(const json& given, const std::vector<ParamGroup>& groups) {
  const json o = resolved_optim(given);
  json out = json::array();
  for (const auto& g : groups) {
    json roles = json::array();
    for (auto r : g.roles) roles.push_back(role_name(r));
    int64_t numel = 0;
    for (const auto& p : g.params) numel += p.numel();
    json settings = {{"lr", base_lr(o, g)}};
    if (g.optimizer == "muon" || g.optimizer == "specgd" || g.optimizer == "normuon") {
      if (g.optimizer == "normuon") {
        settings["normuon_beta2"] = o.at("normuon_beta2");
        settings["normuon_eps"] = o.at("normuon_eps");
        settings["normuon_rescale"] = o.at("normuon_rescale");
      }
      settings["momentum"] = o.at("momentum");
      settings["nesterov"] = o.at("nesterov");
      settings["orthogonalizer"] = o.at("orthogonalizer");
      if (o.at("orthogonalizer") == "newton_schulz") settings["ns_steps"] = o.at("ns_steps");
      settings["weight_decay"] = o.at("weight_decay");
    } else if (g.optimizer == "adamw" || g.optimizer == "adamw_hf") {
      settings["weight_decay"] = g.adamw_side ? o.at("adamw_weight_decay") : o.at("weight_decay");
    } else if (g.optimizer == "frozen") {
      settings = json::object();
    } else {
      settings["momentum"] = g.optimizer == "gd" ? json(0.0) : o.at("momentum");
    }
    if (g.precondition == "riemannian") settings["precondition_delta"] = o.at("precondition_delta");
    if (g.precondition != "none") settings["precondition"] = g.precondition;
    if (g.lr_multiplier != 1.0) settings["lr_multiplier"] = g.lr_multiplier;
    out.push_back({{"group", g.name}, {"optimizer", g.optimizer}, {"settings", settings}, {"roles", roles},
                   {"tensors", static_cast<int64_t>(g.params.size())}, {"parameters", numel}});
  }
  return out;
}

}  // namespace lorascope
