#include "models/lora.h"

#include <ATen/core/grad_mode.h>  // at::NoGradGuard (not in <ATen/ATen.h> from LibTorch 2 on)
#include <algorithm>
#include <cmath>
#include <regex>
#include <stdexcept>

#include "models/linear.h"
#include "models/lora_init.h"
#include "models/parameter_roles.h"

namespace lorascope {

namespace {

using NamedLinear = std::pair<std::string, std::shared_ptr<Linear>>;

std::vector<NamedLinear> linear_layers(torch::nn::Module& model) {
  std::vector<NamedLinear> out;
  for (const auto& item : model.named_modules("", /*include_self=*/false)) {
    if (auto lin = std::dynamic_pointer_cast<Linear>(item.value())) out.emplace_back(item.key(), lin);
  }
  return out;
}

// PEFT's rule for a list of names: the qualified name itself or its last dotted components.
bool name_matches(const std::string& name, const std::string& target) {
  if (name == target) return true;
  const std::string suffix = "." + target;
  return name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool matches_any(const std::string& name, const std::vector<std::string>& targets) {
  for (const auto& t : targets) {
    if (name_matches(name, t)) return true;
  }
  return false;
}

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

[[noreturn]] void fail(const std::string& key, const std::string& what, const std::string& got) {
  throw std::runtime_error("lora: " + key + ": expected " + what + ", got " + got);
}

void validate(const LoraConfig& c) {
  if (c.r < 1) fail("r", "an integer >= 1", std::to_string(c.r));
  if (!(c.alpha > 0) || !std::isfinite(c.alpha)) fail("alpha", "a positive number", std::to_string(c.alpha));
  if (!(c.dropout >= 0 && c.dropout < 1)) fail("dropout", "a number in [0, 1)", std::to_string(c.dropout));
  static const std::vector<std::string> inits = {"peft", "gaussian", "spectral", "olora",
                                                  "lora_ga", "lora_ga_peft", "lora_one"};
  if (std::find(inits.begin(), inits.end(), c.init) == inits.end()) {
    fail("init", "one of " + join(inits), "\"" + c.init + "\"");
  }
  if (lora_init_needs_gradient(c.init) && !(c.init_gamma > 0 && std::isfinite(c.init_gamma))) {
    fail("init_gamma", "a positive number", std::to_string(c.init_gamma));
  }
  if (c.init == "gaussian" && !(c.init_scale > 0)) {
    fail("init_scale", "a positive number for gaussian init", std::to_string(c.init_scale));
  }
  if (c.targets.empty() && c.target_regex.empty()) {
    fail("targets", "at least one target name or a target_regex", "none");
  }
  for (const auto& [pattern, r] : c.rank_pattern) {
    if (r < 1) fail("rank_pattern." + pattern, "an integer >= 1", std::to_string(r));
  }
  for (const auto& [pattern, alpha] : c.alpha_pattern) {
    if (!(alpha > 0) || !std::isfinite(alpha)) fail("alpha_pattern." + pattern, "a positive number", std::to_string(alpha));
  }
}

// PEFT's get_pattern_key: the first pattern P with re.match(r"(.*\.)?(P)$", name).
template <typename V>
const std::pair<std::string, V>* pattern_for(const std::vector<std::pair<std::string, V>>& patterns,
                                             const std::string& name, const char* key) {
  for (const auto& p : patterns) {
    std::regex re;
    try {
      re = std::regex("(.*\\.)?(" + p.first + ")", std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      fail(key, "valid regular expressions as keys", "\"" + p.first + "\" (" + e.what() + ")");
    }
    if (std::regex_match(name, re)) return &p;
  }
  return nullptr;
}

// Which linear layers get an adapter. Throws for a target that matches nothing.
std::vector<NamedLinear> select_targets(const std::vector<NamedLinear>& linears, const LoraConfig& c) {
  std::vector<std::string> names;
  for (const auto& nl : linears) names.push_back(nl.first);
  const std::string available = "; linear layers: " + (names.empty() ? std::string("none") : join(names));

  std::vector<NamedLinear> selected;
  if (!c.target_regex.empty()) {
    std::regex re;
    try {
      re = std::regex(c.target_regex, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      fail("target_regex", "a valid regular expression", "\"" + c.target_regex + "\" (" + e.what() + ")");
    }
    for (const auto& nl : linears) {
      if (std::regex_match(nl.first, re)) selected.push_back(nl);
    }
    if (selected.empty()) {
      throw std::runtime_error("lora: target_regex \"" + c.target_regex + "\" matches no linear layer" + available);
    }
  } else {
    for (const auto& t : c.targets) {
      bool found = false;
      for (const auto& n : names) found = found || name_matches(n, t);
      if (!found) throw std::runtime_error("lora: target \"" + t + "\" matches no linear layer" + available);
    }
    for (const auto& nl : linears) {
      if (matches_any(nl.first, c.targets)) selected.push_back(nl);
    }
  }
  std::vector<NamedLinear> kept;
  for (const auto& nl : selected) {
    if (!matches_any(nl.first, c.exclude)) kept.push_back(nl);
  }
  if (kept.empty()) {
    throw std::runtime_error("lora: exclude: every targeted linear layer is excluded (exclude: " +
                             join(c.exclude) + ")");
  }
  return kept;
}

// Adds the adapter of rank r to one layer with the configured init (see LoraConfig::init).
void init_adapter(Linear& lin, const LoraConfig& c, int64_t r, double scaling, at::Generator& gen) {
  const int64_t in = lin.in_features(), out = lin.out_features();
  const auto f64 = at::TensorOptions().dtype(at::kDouble);
  if (c.init == "peft") {
    // Kaiming-uniform with a = sqrt(5): bound = sqrt(6 / ((1 + a^2) fan_in)) = 1 / sqrt(in).
    const double bound = 1.0 / std::sqrt(double(in));
    lin.add_adapter(at::empty({r, in}, f64).uniform_(-bound, bound, gen), at::zeros({out, r}, f64), scaling,
                    c.dropout);
  } else if (c.init == "gaussian") {
    lin.add_adapter(at::empty({r, in}, f64).normal_(0, c.init_scale, gen), at::zeros({out, r}, f64), scaling,
                    c.dropout);
  } else if (c.init == "olora") {
    at::NoGradGuard no_grad;
    const auto init = olora_init(lin.weight.detach().cpu(), r, scaling);
    lin.add_adapter(init.A, init.B, scaling, c.dropout);
    lin.weight.copy_(init.W);
  } else if (lora_init_needs_gradient(c.init)) {
    // A placeholder until apply_gradient_lora_init: PEFT's init, whose B = 0 leaves the output
    // (and so the gradient the method reads) the base model's.
    LoraConfig placeholder = c;
    placeholder.init = "peft";
    init_adapter(lin, placeholder, r, scaling, gen);
  } else {  // spectral (PiSSA): scaling B A = U_r S_r V_r^T, W <- W - scaling B A
    at::NoGradGuard no_grad;
    const auto W = lin.weight.detach().to(at::kCPU, at::kDouble);  // (out, in)
    const auto usv = at::linalg_svd(W, /*full_matrices=*/false);
    const auto root = (std::get<1>(usv).narrow(0, 0, r) / scaling).sqrt();     // (r)
    const auto A = root.unsqueeze(1) * std::get<2>(usv).narrow(0, 0, r);       // (r, in)
    const auto B = std::get<0>(usv).narrow(1, 0, r) * root.unsqueeze(0);       // (out, r)
    lin.add_adapter(A, B, scaling, c.dropout);
    // Subtract the adapter as stored (in the weight's dtype), so the output is unchanged up to
    // one rounding of W.
    const auto stored = scaling * at::matmul(lin.lora_B->weight.to(at::kDouble).cpu(),
                                             lin.lora_A->weight.to(at::kDouble).cpu());  // (out, r) (r, in)
    lin.weight.copy_(W - stored);
  }
}

// PEFT's modules_to_save rule, over all modules; returns the parameter-name prefixes.
std::vector<std::string> saved_prefixes(torch::nn::Module& model, const std::vector<std::string>& modules) {
  const auto named = model.named_modules("", /*include_self=*/false);
  std::vector<std::string> prefixes;
  for (const auto& m : modules) {
    bool found = false;
    for (const auto& item : named) {
      if (name_matches(item.key(), m)) {
        prefixes.push_back(item.key() + ".");
        found = true;
      }
    }
    if (!found) {
      // Name the modules outside the layer stacks (a digit component marks a layer).
      std::vector<std::string> top;
      for (const auto& item : named) {
        if (!std::regex_search(item.key(), std::regex("(^|\\.)[0-9]+(\\.|$)"))) top.push_back(item.key());
      }
      throw std::runtime_error("lora: modules_to_save: \"" + m + "\" matches no module; modules: " + join(top));
    }
  }
  return prefixes;
}

}  // namespace

std::pair<int64_t, double> lora_rank_alpha(const LoraConfig& config, const std::string& name) {
  const auto* r = pattern_for(config.rank_pattern, name, "rank_pattern");
  const auto* alpha = pattern_for(config.alpha_pattern, name, "alpha_pattern");
  return {r ? r->second : config.r, alpha ? alpha->second : config.alpha};
}

double lora_scaling(const LoraConfig& config, int64_t r, double alpha) {
  return config.rslora ? alpha / std::sqrt(double(r)) : alpha / double(r);
}

std::vector<AdapterRef> attach_lora(torch::nn::Module& model, const LoraConfig& config, at::Generator& gen) {
  validate(config);
  const auto targets = select_targets(linear_layers(model), config);
  const auto prefixes = saved_prefixes(model, config.modules_to_save);
  // Every check before the first adapter, so that a failed call leaves the model as it was.
  for (const auto& nl : targets) {
    if (nl.second->has_adapter()) throw std::runtime_error("lora: " + nl.first + " already has an adapter");
    const int64_t k = std::min(nl.second->in_features(), nl.second->out_features());
    const int64_t r = lora_rank_alpha(config, nl.first).first;
    // The factors come from r (lora_ga: 2r) singular or QR directions of the weight.
    const int64_t directions = config.init == "lora_ga" || config.init == "lora_ga_peft" ? 2 * r : r;
    if (config.init != "peft" && config.init != "gaussian" && directions > k) {
      fail("r", "at most " + std::string(directions > r ? "min(out, in) / 2 = " : "min(out, in) = ") +
                    std::to_string(directions > r ? k / 2 : k) + " of " + nl.first + " for " + config.init + " init",
           std::to_string(r));
    }
  }
  for (const auto& nl : targets) {
    const auto [r, alpha] = lora_rank_alpha(config, nl.first);
    init_adapter(*nl.second, config, r, lora_scaling(config, r, alpha), gen);
  }

  freeze_for_lora(model, prefixes);
  return find_adapters(model);
}

bool lora_init_changes_base(const std::string& init) {
  return init == "spectral" || init == "olora" || init == "lora_ga" || init == "lora_ga_peft";
}

bool lora_init_needs_gradient(const std::string& init) {
  return init == "lora_ga" || init == "lora_ga_peft" || init == "lora_one";
}

void apply_gradient_lora_init(torch::nn::Module& model, const LoraConfig& config,
                              const std::map<std::string, at::Tensor>& gradients) {
  if (!lora_init_needs_gradient(config.init)) {
    throw std::invalid_argument("lora: init " + config.init + " is not computed from a gradient");
  }
  at::NoGradGuard no_grad;
  std::vector<std::pair<std::shared_ptr<Linear>, LoraInitFactors>> inits;
  for (const auto& [name, lin] : linear_layers_by_name(model)) {
    if (!lin->has_adapter()) continue;
    const auto g = gradients.find(name);
    if (g == gradients.end()) throw std::invalid_argument("lora: " + name + ": no gradient for " + config.init + " init");
    const auto W = lin->weight.detach().cpu();
    const int64_t r = lin->lora_A->weight.size(0);
    try {
      if (config.init == "lora_one") {
        LoraOneOptions o;
        o.gamma = config.init_gamma;
        inits.emplace_back(lin, lora_one_init(W, g->second, r, lin->scaling, o));
      } else {
        LoraGaOptions o;
        o.stable_gamma = config.init_gamma;
        o.flavor = config.init == "lora_ga_peft" ? LoraGaFlavor::Peft : LoraGaFlavor::Paper;
        inits.emplace_back(lin, lora_ga_init(W, g->second, r, lin->scaling, o));
      }
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument("lora: " + name + ": " + e.what());
    }
  }
  for (auto& [lin, init] : inits) {
    lin->lora_A->weight.copy_(init.A);
    lin->lora_B->weight.copy_(init.B);
    lin->weight.copy_(init.W);
  }
}

void freeze_for_lora(torch::nn::Module& model, const std::vector<std::string>& saved_prefixes) {
  RoleRules rules;
  rules.trained_in_full = saved_prefixes;
  apply_roles(parameter_roles(model, rules));
}

std::vector<std::string> modules_to_save_prefixes(torch::nn::Module& model, const std::vector<std::string>& modules) {
  return saved_prefixes(model, modules);
}

std::map<std::string, std::shared_ptr<Linear>> linear_layers_by_name(torch::nn::Module& model) {
  std::map<std::string, std::shared_ptr<Linear>> out;
  for (const auto& nl : linear_layers(model)) out[nl.first] = nl.second;
  return out;
}

std::vector<AdapterRef> find_adapters(torch::nn::Module& model) { return parameter_roles(model).adapters; }

std::vector<std::string> linear_layer_names(torch::nn::Module& model) {
  std::vector<std::string> names;
  for (const auto& nl : linear_layers(model)) names.push_back(nl.first);
  return names;
}

void merge_lora(torch::nn::Module& model) {
  at::NoGradGuard no_grad;
  // Check every layer before changing any, so a failed merge leaves the model as it was.
  std::vector<std::pair<std::shared_ptr<Linear>, at::Tensor>> merged;
  for (const auto& nl : linear_layers(model)) {
    if (!nl.second->has_adapter() || nl.second->merged) continue;
    const auto W = nl.second->weight + nl.second->delta_weight();  // (out, in)
    if (!at::isfinite(W).all().item<bool>()) {
      throw std::runtime_error("lora: merging " + nl.first + " gives a non-finite weight");
    }
    merged.emplace_back(nl.second, W);
  }
  for (auto& lw : merged) {
    lw.first->weight.copy_(lw.second);
    lw.first->merged = true;
  }
}

void unmerge_lora(torch::nn::Module& model) {
  at::NoGradGuard no_grad;
  for (const auto& nl : linear_layers(model)) {
    if (!nl.second->has_adapter() || !nl.second->merged) continue;
    nl.second->weight.sub_(nl.second->delta_weight());
    nl.second->merged = false;
  }
}

}  // namespace lorascope
