#include "trainer/run_analysis.h"

#include <ATen/core/grad_mode.h>  // at::NoGradGuard (not in <ATen/ATen.h> from LibTorch 2 on)
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>

#include "data/matrix_json.h"
#include "models/esd_alpha.h"
#include "models/hf_checkpoint.h"
#include "models/principal_angles.h"
#include "models/safetensors.h"
#include "models/spectral_stats.h"
#include "models/transformer_config.h"
#include "optim/state_io.h"
#include "trainer/config.h"
#include "util/json_file.h"

namespace lorascope {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const std::string kPrefix = "base_model.model.";  // PEFT's tensor name prefix

json read_json(const fs::path& path, const std::string& what) {
  if (!fs::exists(path)) throw ConfigError(path.string() + ": not found (" + what + ")");
  try {
    return read_json_file(path.string());
  } catch (const std::exception& e) {
    throw ConfigError(e.what());
  }
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::vector<double> values(const at::Tensor& t) { return to_vector(t); }

json fit_json(const PowerLawFit& f) {
  return {{"alpha", f.alpha}, {"xmin", f.xmin}, {"D", f.D}, {"sigma", f.sigma}, {"num_evals", f.num_evals},
          {"num_pl_spikes", f.num_pl_spikes}, {"status", f.status}};
}

// The base weights of the adapted modules, from a Hugging Face checkpoint or a pretrain run.
class BaseWeights {
 public:
  BaseWeights(const std::string& base, const std::string& where) : base_(base), where_(where) {
    if (is_hf_checkpoint_dir(base)) {
      family_ = read_hf_config(base).family;
      hf_.emplace(base);
    } else if (fs::exists(fs::path(base) / "model.pt") && fs::exists(fs::path(base) / "model_config.json")) {
      const auto cfg_path = (fs::path(base) / "model_config.json").string();
      family_ = hf_family(TransformerConfig::from_json(read_json(cfg_path, "the base's model config"), cfg_path));
      dict_ = load_tensor_dict((fs::path(base) / "model.pt").string());
    } else {
      throw ConfigError(where + ": base: \"" + base + "\": not a base model directory (expected config.json + "
                        "model.safetensors, or model.pt + model_config.json from lorascope pretrain)");
    }
  }

  // module: the Hugging Face path from the adapter's tensor names.
  at::Tensor weight(const std::string& module) const {
    if (hf_) {
      // A bare body (BertModel, LlamaModel) has no "bert." / "model." prefix; a task model has.
      std::vector<std::string> names = {module + ".weight"};
      for (const char* p : {"model.", "bert.", "roberta."}) {
        if (module.rfind(p, 0) == 0) names.push_back(module.substr(std::string(p).size()) + ".weight");
        else names.push_back(p + module + ".weight");
      }
      for (const auto& n : names) {
        if (hf_->contains(n)) return hf_->tensor(n);
      }
    } else {
      const std::string name = lorascope_parameter_name(module, family_) + ".weight";
      if (dict_.count(name)) return dict_.at(name);
    }
    throw ConfigError(base_ + ": no weight for the adapted module \"" + module + "\" (named by " + where_ +
                      "; an adapter of another base model?)");
  }

 private:
  std::string base_, where_, family_;
  std::optional<SafetensorsCheckpoint> hf_;
  TensorDict dict_;
};

}  // namespace

RunAdapters load_run_adapters(const std::string& run_dir) {
  RunAdapters run;
  run.dir = run_dir;
  run.name = fs::path(run_dir).lexically_normal().filename().string();
  if (run.name.empty()) run.name = fs::path(run_dir).lexically_normal().parent_path().filename().string();
  const fs::path cfg_path = fs::path(run_dir) / "config.json";
  const json cfg = read_json(cfg_path, "a run directory written by lorascope finetune has it");
  if (!cfg.is_object() || !cfg.contains("base") || !cfg["base"].is_string() || cfg["base"].get<std::string>().empty()) {
    throw ConfigError(cfg_path.string() + ": base: expected the base model's directory (a finetune run's config)");
  }
  run.base = cfg["base"].get<std::string>();
  if (cfg.contains("name") && cfg["name"].is_string()) run.name = cfg["name"].get<std::string>();

  const fs::path adir = fs::path(run_dir) / "adapter";
  const fs::path acfg_path = adir / "adapter_config.json";
  const json acfg = read_json(acfg_path, "finetune writes RUN/adapter/ at the end when lora.export_peft is on");
  double alpha = 0;
  bool rslora = false;
  try {
    const JsonFields f(acfg, acfg_path.string());
    if (f.string("peft_type", "") != "LORA") f.fail("peft_type", "expected \"LORA\"");
    run.r = f.integer("r", 1);
    alpha = f.positive("lora_alpha");
    rslora = f.boolean("use_rslora", false);
    for (const char* key : {"rank_pattern", "alpha_pattern"}) {
      if (f.has(key) && !(acfg[key].is_object() && acfg[key].empty())) {
        f.fail(key, "per-module ranks and alphas are not supported; expected {}");
      }
    }
  } catch (const JsonFileError& e) {
    throw ConfigError(e.what());
  }
  const double scaling = rslora ? alpha / std::sqrt(static_cast<double>(run.r)) : alpha / static_cast<double>(run.r);

  const fs::path st_path = adir / "adapter_model.safetensors";
  if (!fs::exists(st_path)) throw ConfigError(st_path.string() + ": not found");
  std::map<std::string, std::pair<at::Tensor, at::Tensor>> factors;  // module -> (A, B)
  try {
    const SafetensorsFile file(st_path.string());
    for (const auto& key : file.names()) {
      for (const char* f : {".lora_A.weight", ".lora_B.weight"}) {
        if (key.rfind(kPrefix, 0) == 0 && ends_with(key, f)) {
          const std::string module = key.substr(kPrefix.size(), key.size() - kPrefix.size() - std::string(f).size());
          (f[6] == 'A' ? factors[module].first : factors[module].second) = file.tensor(key);
        }
      }
    }
  } catch (const ConfigError&) {
    throw;
  } catch (const std::exception& e) {
    throw ConfigError(e.what());
  }
  if (factors.empty()) throw ConfigError(st_path.string() + ": no lora_A / lora_B tensors");

  run.base_resolved = fs::weakly_canonical(fs::path(run.base)).string();
  const BaseWeights base(run.base, cfg_path.string());
  for (const auto& [module, ab] : factors) {
    const std::string key = kPrefix + module;
    if (!ab.first.defined() || !ab.second.defined()) {
      throw ConfigError(st_path.string() + ": " + key + ": has only one of lora_A / lora_B");
    }
    AdapterLayer layer{module, base.weight(module), ab.first, ab.second, scaling};
    const std::vector<int64_t> a_shape = {run.r, layer.W.size(1)}, b_shape = {layer.W.size(0), run.r};
    if (layer.W.dim() != 2 || !layer.A.sizes().equals(a_shape) || !layer.B.sizes().equals(b_shape)) {
      throw ConfigError(st_path.string() + ": " + key + ": expected lora_A " + c10::str(at::IntArrayRef(a_shape)) +
                        " and lora_B " + c10::str(at::IntArrayRef(b_shape)) + " (r = " + std::to_string(run.r) +
                        ", base weight " + c10::str(layer.W.sizes()) + "), got " + c10::str(layer.A.sizes()) +
                        " and " + c10::str(layer.B.sizes()));
    }
    run.layers.push_back(std::move(layer));
  }
  return run;
}

void check_comparable(const RunAdapters& a, const RunAdapters& b) {
  const std::string a_cfg = (fs::path(a.dir) / "config.json").string();
  const std::string b_cfg = (fs::path(b.dir) / "config.json").string();
  if (a.base_resolved != b.base_resolved) {
    throw ConfigError(b_cfg + ": base: \"" + b.base + "\" is not the base of " + a_cfg + " (\"" + a.base +
                      "\"): analyze compares adapters of one base model");
  }
  const std::string b_adapter = (fs::path(b.dir) / "adapter" / "adapter_model.safetensors").string();
  if (a.r != b.r) {
    throw ConfigError((fs::path(b.dir) / "adapter" / "adapter_config.json").string() + ": r: " + std::to_string(b.r) +
                      ", but the adapters of " + a.dir + " have r = " + std::to_string(a.r));
  }
  std::map<std::string, const AdapterLayer*> in_b;
  for (const auto& l : b.layers) in_b[l.module] = &l;
  for (const auto& l : a.layers) {
    const auto it = in_b.find(l.module);
    if (it == in_b.end()) {
      throw ConfigError(b_adapter + ": no adapter for " + l.module + ", which " + a.dir + " adapts");
    }
    if (!it->second->A.sizes().equals(l.A.sizes()) || !it->second->B.sizes().equals(l.B.sizes())) {
      throw ConfigError(b_adapter + ": " + l.module + ": lora_A " + c10::str(it->second->A.sizes()) + ", lora_B " +
                        c10::str(it->second->B.sizes()) + ", but " + a.dir + " has " + c10::str(l.A.sizes()) + ", " +
                        c10::str(l.B.sizes()));
    }
    in_b.erase(it);
  }
  if (!in_b.empty()) {
    throw ConfigError(b_adapter + ": adapts " + in_b.begin()->first + ", which " + a.dir + " does not");
  }
}

json analyze_layer(const AdapterLayer& layer, const GeometryOptions& options) {
  at::NoGradGuard no_grad;
  const at::Tensor W = layer.W.to(at::kDouble), A = layer.A.to(at::kDouble), B = layer.B.to(at::kDouble);
  const BaseSpectrum base = base_spectrum(W);
  const AdapterGeometry g = adapter_geometry(base, B, A, layer.scaling, options);
  const auto delta = stats_from_sv(values(g.delta.S));
  const int64_t k = std::min<int64_t>(base.S.size(0), options.base_k > 0 ? options.base_k : A.size(0));
  const at::Tensor merged = W + layer.scaling * at::matmul(B, A);
  const auto& in = g.intruders;
  return {{"module", layer.module},
          {"shape", {W.size(0), W.size(1)}},
          {"scaling", layer.scaling},
          {"delta_sv", delta.sv},
          {"delta_rank", g.delta.rank},
          {"erank", delta.erank},
          {"sv_entropy", delta.erank > 0 ? std::log(delta.erank) : 0.0},
          {"stable_rank", delta.stable_rank},
          {"fro", delta.fro},
          {"base_k", k},
          {"angles_left", values(g.angles_left)},
          {"angles_right", values(g.angles_right)},
          {"align_left", g.align_left},
          {"align_right", g.align_right},
          {"intruders", in.count},
          {"intruder_sv", in.count ? json(in.max_sv) : json(nullptr)},
          {"intruder_indices", in.indices},
          {"intruder_max_cos", in.max_cos},
          {"merged_top_sv", in.sv},
          {"base_top_sv", values(base.S.narrow(0, 0, std::min<int64_t>(base.S.size(0), options.intruder_top_k)))},
          {"esd_W", fit_json(esd_alpha(W))},
          {"esd_merged", fit_json(esd_alpha(merged))}};
}

json analyze_run(const RunAdapters& run, const GeometryOptions& options) {
  json layers = json::array();
  for (const auto& l : run.layers) layers.push_back(analyze_layer(l, options));
  return {{"run", run.name}, {"dir", run.dir}, {"base", run.base}, {"r", run.r},
          {"intruder_top_k", options.intruder_top_k}, {"intruder_epsilon", options.intruder_epsilon},
          {"layers", layers}, {"history", geometry_history(run.dir)}};
}

json compare_runs(const RunAdapters& a, const RunAdapters& b) {
  at::NoGradGuard no_grad;
  std::map<std::string, const AdapterLayer*> in_b;
  for (const auto& l : b.layers) in_b[l.module] = &l;
  const auto grid_json = [](const at::Tensor& g) {
    json rows = json::array();
    for (int64_t i = 0; i < g.size(0); ++i) rows.push_back(values(g[i]));
    return rows;
  };
  json layers = json::array();
  for (const auto& la : a.layers) {
    const auto it = in_b.find(la.module);
    if (it == in_b.end()) continue;
    const auto& lb = *it->second;
    // Right singular vectors of A (r x in) and left singular vectors of B (out x r), descending.
    const auto right = [](const at::Tensor& A) { return std::get<2>(at::linalg_svd(A.to(at::kDouble), false)).t(); };
    const auto left = [](const at::Tensor& B) { return std::get<0>(at::linalg_svd(B.to(at::kDouble), false)); };
    layers.push_back({{"module", la.module},
                      {"phi_A", grid_json(grassmann_similarity_grid(right(la.A), right(lb.A)))},
                      {"phi_B", grid_json(grassmann_similarity_grid(left(la.B), left(lb.B)))}});
  }
  return {{"runs", {a.name, b.name}}, {"layers", layers}};
}

json geometry_history(const std::string& run_dir) {
  static const std::vector<std::string> kFields = {"align_left", "align_right", "intruders", "intruder_sv"};
  const fs::path path = fs::path(run_dir) / "metrics.jsonl";
  if (!fs::exists(path)) return json::object();
  std::vector<int64_t> steps;
  std::map<std::string, std::map<std::string, std::vector<json>>> series;  // adapter -> field -> per step
  for (const auto& line : read_json_lines(path.string())) {  // a torn last line left out
    const json& rec = line.value;
    if (!rec.is_object() || !rec.contains("adapters") || !rec["adapters"].is_object() || !rec.contains("step")) continue;
    bool has = false;
    for (const auto& [name, st] : rec["adapters"].items()) has = has || (st.is_object() && st.contains("intruders"));
    if (!has) continue;
    const size_t row = steps.size();
    steps.push_back(rec["step"].get<int64_t>());
    for (const auto& [name, st] : rec["adapters"].items()) {
      for (const auto& f : kFields) {
        auto& col = series[name][f];
        col.resize(row, nullptr);
        col.push_back(st.is_object() && st.contains(f) ? st[f] : json(nullptr));
      }
    }
  }
  if (steps.empty()) return json::object();
  json adapters = json::object();
  for (auto& [name, fields] : series) {
    for (auto& [f, col] : fields) {
      col.resize(steps.size(), nullptr);
      adapters[name][f] = col;
    }
  }
  return {{"steps", steps}, {"adapters", adapters}};
}

json analyze_weights_file(const std::string& path) {
  json layers = json::array();
  try {
    const SafetensorsFile file(path);
    for (const auto& name : file.names()) {
      const auto& shape = file.header().tensors.at(name).shape;
      if (shape.size() != 2) continue;
      const at::Tensor W = file.tensor(name);
      if (!W.is_floating_point()) continue;
      auto entry = fit_json(esd_alpha(W));
      entry["name"] = name;
      entry["shape"] = shape;
      layers.push_back(entry);
    }
  } catch (const std::exception& e) {
    throw ConfigError(e.what());
  }
  if (layers.empty()) throw ConfigError(path + ": no 2-D floating-point tensors");
  return {{"file", path}, {"layers", layers}};
}

}  // namespace lorascope
