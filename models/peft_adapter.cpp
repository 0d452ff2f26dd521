#include "models/peft_adapter.h"

#include <ATen/core/grad_mode.h>  // at::NoGradGuard (not in <ATen/ATen.h> from LibTorch 2 on)
#include <cmath>
#include <limits>
#include <filesystem>
#include <fstream>
#include <set>
#include <stdexcept>

#include "models/hf_checkpoint.h"
#include "models/linear.h"
#include "models/safetensors.h"
#include "util/json_file.h"

namespace lorascope {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const std::string kPrefix = "base_model.model.";

// lorascope module names of modules_to_save -> HF module names PEFT matches by suffix.
std::vector<std::string> hf_modules(const std::vector<std::string>& modules, const std::string& family) {
  std::vector<std::string> out;
  for (const auto& m : modules) {
    if (family == "bert" && m == "classifier") {  // pooler + classifier (models/hf_checkpoint.h)
      out.push_back("pooler");
      out.push_back("classifier");
    } else {
      std::string hf = hf_parameter_name(m + ".", family);
      out.push_back(hf.substr(0, hf.size() - 1));
    }
  }
  return out;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

template <typename V>
json patterns(const std::vector<std::pair<std::string, V>>& list) {
  json out = json::object();
  for (const auto& [pattern, value] : list) out[pattern] = value;
  return out;
}

// rank_pattern / alpha_pattern in the file's order (PEFT takes the first matching pattern, in
// dict order; nlohmann::json sorts keys, ordered_json keeps them).
std::vector<std::pair<std::string, double>> read_patterns(const std::string& path, const std::string& key, bool integer) {
  const auto j = read_ordered_json_file(path);
  std::vector<std::pair<std::string, double>> out;
  if (!j.contains(key) || j.at(key).is_null()) return out;
  const auto& obj = j.at(key);
  if (!obj.is_object()) throw std::runtime_error(path + ": " + key + ": expected an object, got " + obj.dump());
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    const auto& v = it.value();
    const bool ok = integer ? v.is_number_integer() && v.get<int64_t>() >= 1 : v.is_number() && v.get<double>() > 0;
    if (!ok) {
      throw std::runtime_error(path + ": " + key + "." + it.key() + ": expected " +
                               (integer ? "an integer >= 1" : "a positive number") + ", got " + v.dump());
    }
    out.emplace_back(it.key(), v.get<double>());
  }
  return out;
}

}  // namespace

json peft_adapter_config(const LoraConfig& lora, const std::string& task_type, const std::string& family,
                         const std::string& base_model_name_or_path) {
  json targets;
  if (!lora.target_regex.empty()) {
    targets = lora.target_regex;  // PEFT: a string is a full-match regex
  } else {
    targets = json::array();
    for (const auto& t : lora.targets) targets.push_back(hf_parameter_name(t, family));
  }
  const auto saved = hf_modules(lora.modules_to_save, family);
  return {{"peft_type", "LORA"},
          {"task_type", task_type},
          {"base_model_name_or_path", base_model_name_or_path.empty() ? json(nullptr) : json(base_model_name_or_path)},
          {"r", lora.r},
          {"lora_alpha", lora.alpha},
          {"lora_dropout", lora.dropout},
          {"target_modules", targets},
          {"exclude_modules", lora.exclude.empty() ? json(nullptr) : json(lora.exclude)},
          {"bias", "none"},
          {"use_rslora", lora.rslora},
          {"use_dora", false},
          {"fan_in_fan_out", false},
          {"init_lora_weights", true},
          {"modules_to_save", saved.empty() ? json(nullptr) : json(saved)},
          {"layers_to_transform", nullptr},
          {"layers_pattern", nullptr},
          {"rank_pattern", patterns(lora.rank_pattern)},
          {"alpha_pattern", patterns(lora.alpha_pattern)},
          {"inference_mode", true},
          {"revision", nullptr}};
}

InitialAdapters starting_factors(torch::nn::Module& model, const LoraConfig& lora) {
  InitialAdapters out;
  if (!lora_init_changes_base(lora.init)) return out;
  for (const auto& a : find_adapters(model)) out[a.name] = {a.A.detach().cpu().clone(), a.B.detach().cpu().clone()};
  return out;
}

void save_peft_adapter(SequenceModel& model, const LoraConfig& lora, const std::string& dir,
                       const std::string& base_model_name_or_path, const InitialAdapters* initial) {
  RoleRules rules;
  rules.trained_in_full = modules_to_save_prefixes(model, lora.modules_to_save);
  rules.head_module = model.head_module();
  save_peft_adapter(model, parameter_roles(model, rules), lora, dir, base_model_name_or_path, initial);
}

void save_peft_adapter(SequenceModel& model, const ParameterRoles& roles, const LoraConfig& lora_in,
                       const std::string& dir, const std::string& base_model_name_or_path,
                       const InitialAdapters* initial) {
  const bool converted = lora_init_changes_base(lora_in.init);
  if (converted && initial == nullptr) {
    throw std::runtime_error(dir + ": cannot export a " + lora_in.init + "-init adapter in PEFT's format without its "
                             "starting factors: it was trained against a base weight minus its starting product, "
                             "which PEFT's base model lacks");
  }
  LoraConfig lora = lora_in;
  lora.modules_to_save = roles.trained_in_full_modules;  // what trained in full, as the table says
  if (converted) {  // rank 2r at the same scaling (see the header)
    const double alpha_factor = lora.rslora ? std::sqrt(2.0) : 2.0;
    lora.r *= 2;
    lora.alpha *= alpha_factor;
    for (auto& [pattern, r] : lora.rank_pattern) r *= 2;
    for (auto& [pattern, alpha] : lora.alpha_pattern) alpha *= alpha_factor;
  }
  const std::string family = hf_family(model.config());
  const auto linears = linear_layers_by_name(model);
  std::map<std::string, at::Tensor> tensors;
  for (const auto& adapter : roles.adapters) {
    const auto& name = adapter.name;
    const auto lin = linears.find(name);
    if (lin != linears.end() && lin->second->merged) {
      throw std::runtime_error(dir + ": " + name + ": unmerge the adapter before exporting it");
    }
    const std::string hf = kPrefix + hf_parameter_name(name, family);
    auto A = adapter.A.detach().cpu();
    auto B = adapter.B.detach().cpu();
    if (converted) {
      const auto it = initial->find(name);
      if (it == initial->end()) throw std::runtime_error(dir + ": " + name + ": no starting factors to export with");
      A = at::cat({A, it->second.first.to(A.options())}, 0);   // (2r, in)
      B = at::cat({B, -it->second.second.to(B.options())}, 1);  // (out, 2r)
    }
    tensors[hf + ".lora_A.weight"] = A.contiguous();
    tensors[hf + ".lora_B.weight"] = B.contiguous();
  }
  if (tensors.empty()) throw std::runtime_error(dir + ": the model has no LoRA adapters to export");
  for (const auto& p : roles.parameters) {
    if (p.role == ParameterRole::TrainedInFull) {
      tensors[kPrefix + hf_parameter_name(p.name, family)] = p.tensor.detach().cpu();
    }
  }
  const std::string task = model.head() == "classification" ? "SEQ_CLS" : "CAUSAL_LM";
  fs::create_directories(dir);
  save_safetensors(tensors, (fs::path(dir) / "adapter_model.safetensors").string(), {{"format", "pt"}});
  const std::string cfg = (fs::path(dir) / "adapter_config.json").string();
  {
    std::ofstream out(cfg + ".tmp");
    out << peft_adapter_config(lora, task, family, base_model_name_or_path).dump(2) << "\n";
    if (!out) throw std::runtime_error(cfg + ": cannot write");
  }
  fs::rename(cfg + ".tmp", cfg);
  const std::string readme = (fs::path(dir) / "README.md").string();
  if (model.head() == "classification" && model.config().pooling != "pooler") {
    std::ofstream(readme) << pooled_head_readme(model.config());
  } else {
    fs::remove(readme);  // a README of an earlier export to this directory
  }
}

std::string pooled_head_readme(const TransformerConfig& c) {
  const std::string pooled = c.pooling == "mean" ? "the mask-weighted mean of the last hidden states" : "the [CLS] hidden state";
  return "# Not a drop-in transformers / PEFT sequence classifier\n\n"
         "This adapter was trained by lorascope with a classification head that reads " + pooled +
         (c.normalize_pooled ? ", L2-normalized," : "") +
         " (sentence-transformers pooling, from the base model's modules.json; model key `pooling` = `" + c.pooling +
         "`). transformers' `BertForSequenceClassification` / `RobertaForSequenceClassification`, which "
         "`PeftModel.from_pretrained` wraps for task_type SEQ_CLS, pool differently (the [CLS] token through the "
         "pooler's tanh layer, or RoBERTa's classification head), so loading this directory there gives other "
         "logits than lorascope's, and its saved classifier tensors may not even fit that head.\n\n"
         "What carries over: the LoRA factors (lora_A, lora_B) of the encoder's attention layers. To reproduce "
         "lorascope's logits in Python, run the encoder with the adapter merged (`lorascope hf merge`), pool as "
         "above" + std::string(c.normalize_pooled ? ", normalize" : "") +
         " and apply `classifier.out_proj` (saved here under modules_to_save), or evaluate with "
         "`lorascope finetune --set lora.adapter=DIR`.\n";
}

LoraConfig load_peft_adapter(SequenceModel& model, const std::string& dir) try {
  const std::string cfg_path = (fs::path(dir) / "adapter_config.json").string();
  const std::string st_path = (fs::path(dir) / "adapter_model.safetensors").string();
  if (!fs::exists(cfg_path)) {
    throw std::runtime_error(cfg_path + ": not found (a PEFT adapter directory has adapter_config.json)");
  }
  const json c = read_json_file(cfg_path);
  const JsonFields f(c, cfg_path);
  if (f.string("peft_type", "") != "LORA") f.fail("peft_type", "expected \"LORA\"");
  const auto is_off = [&](const std::string& key) {
    return !f.has(key) || c[key] == false || (c[key].is_object() && c[key].empty());
  };
  if (!is_off("use_dora")) f.fail("use_dora", "DoRA is not supported; expected false");
  if (!is_off("fan_in_fan_out")) f.fail("fan_in_fan_out", "expected false (Conv1D layers are not supported)");
  if (c.contains("bias") && c["bias"] != "none") f.fail("bias", "expected \"none\" (trained biases are not supported)");

  LoraConfig lora;
  lora.r = f.integer("r", 1, std::numeric_limits<int64_t>::max());
  lora.alpha = f.positive("lora_alpha");
  lora.rslora = f.boolean("use_rslora", false);
  lora.dropout = f.number("lora_dropout", 0.0, 0.0, 1.0);
  const std::string family = hf_family(model.config());
  lora.targets.clear();
  if (c.contains("target_modules") && c["target_modules"].is_array()) {
    for (const auto& t : c["target_modules"]) {
      if (t.is_string()) lora.targets.push_back(lorascope_parameter_name(t.get<std::string>(), family));
    }
  } else if (c.contains("target_modules") && c["target_modules"].is_string()) {
    lora.target_regex = c["target_modules"].get<std::string>();
  }
  for (const auto& [pattern, r] : read_patterns(cfg_path, "rank_pattern", true)) {
    lora.rank_pattern.emplace_back(pattern, static_cast<int64_t>(r));
  }
  lora.alpha_pattern = read_patterns(cfg_path, "alpha_pattern", false);
  // PEFT matches the patterns against its (Hugging Face) module names.
  const auto rank_alpha = [&](const std::string& module) {
    try {
      return lora_rank_alpha(lora, hf_parameter_name(module, family));
    } catch (const std::runtime_error& e) {
      throw std::runtime_error(cfg_path + ": " + e.what());
    }
  };

  const SafetensorsFile file(st_path);
  auto linears = linear_layers_by_name(model);
  // Pair lora_A / lora_B by module, and the other tensors (modules_to_save) by parameter.
  std::map<std::string, std::pair<at::Tensor, at::Tensor>> adapters;
  std::map<std::string, at::Tensor> saved;
  for (const auto& key : file.names()) {
    if (key.rfind(kPrefix, 0) != 0) {
      throw std::runtime_error(st_path + ": tensor \"" + key + "\": expected a name starting with \"" + kPrefix + "\"");
    }
    std::string name = lorascope_parameter_name(key.substr(kPrefix.size()), family);
    for (const char* factor : {".lora_A.weight", ".lora_B.weight"}) {
      if (ends_with(name, factor)) {
        const std::string module = name.substr(0, name.size() - std::string(factor).size());
        if (!linears.count(module)) {
          throw std::runtime_error(st_path + ": tensor \"" + key + "\": the model has no linear layer \"" + module +
                                   "\" (adapter for another architecture or layer count?)");
        }
        auto& pair = adapters[module];
        (factor[6] == 'A' ? pair.first : pair.second) = file.tensor(key);
        name.clear();
        break;
      }
    }
    if (!name.empty()) saved[name] = file.tensor(key);
  }
  if (adapters.empty()) throw std::runtime_error(st_path + ": no lora_A / lora_B tensors");
  // Check everything before changing the model.
  for (const auto& [module, ab] : adapters) {
    const auto& lin = *linears.at(module);
    const std::string key = kPrefix + hf_parameter_name(module, family);
    if (!ab.first.defined() || !ab.second.defined()) {
      throw std::runtime_error(st_path + ": " + key + ": has only one of lora_A / lora_B");
    }
    if (lin.has_adapter()) throw std::runtime_error(st_path + ": " + module + " already has an adapter");
    const int64_t r = rank_alpha(module).first;
    const std::vector<int64_t> a_shape = {r, lin.in_features()}, b_shape = {lin.out_features(), r};
    if (!ab.first.sizes().equals(a_shape) || !ab.second.sizes().equals(b_shape)) {
      throw std::runtime_error(st_path + ": " + key + ": expected lora_A " + c10::str(at::IntArrayRef(a_shape)) +
                               " and lora_B " + c10::str(at::IntArrayRef(b_shape)) + " (r = " + std::to_string(r) +
                               " from adapter_config.json), got " + c10::str(ab.first.sizes()) + " and " +
                               c10::str(ab.second.sizes()));
    }
  }
  std::map<std::string, at::Tensor> params;
  for (auto& p : model.named_parameters(true)) params[p.key()] = p.value();
  std::set<std::string> saved_modules;
  for (const auto& [name, t] : saved) {
    auto it = params.find(name);
    const std::string key = kPrefix + hf_parameter_name(name, family);
    if (it == params.end()) {
      throw std::runtime_error(st_path + ": tensor \"" + key + "\": the model has no parameter \"" + name + "\"");
    }
    if (!it->second.sizes().equals(t.sizes())) {
      throw std::runtime_error(st_path + ": " + key + ": expected shape " + c10::str(it->second.sizes()) + ", got " +
                               c10::str(t.sizes()));
    }
    saved_modules.insert(name.substr(0, name.rfind('.')));
  }
  {
    at::NoGradGuard no_grad;
    for (const auto& [name, t] : saved) params.at(name).copy_(t);
  }
  for (const auto& [module, ab] : adapters) {
    const auto [r, alpha] = rank_alpha(module);
    linears.at(module)->add_adapter(ab.first, ab.second, lora_scaling(lora, r, alpha), lora.dropout);
  }
  lora.modules_to_save.assign(saved_modules.begin(), saved_modules.end());
  std::vector<std::string> prefixes;
  for (const auto& m : saved_modules) prefixes.push_back(m + ".");
  freeze_for_lora(model, prefixes);
  return lora;
} catch (const nlohmann::json::exception& e) {
  // A well-formed JSON file of the wrong shape (a number where an object belongs, ...).
  throw std::runtime_error(dir + ": unexpected JSON structure (" + e.what() + ")");
}

}  // namespace lorascope
