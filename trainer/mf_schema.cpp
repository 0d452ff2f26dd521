#include "trainer/mf_schema.h"

#include <algorithm>

#include "trainer/optimizer_factory.h"

namespace lorascope {

using nlohmann::json;

namespace {
ConfigSchema build() {
  ConfigSchema s;
  s.string("name", "mf", {}, "run name (a directory under --out)");
  s.integer("seed", 0, "seeds the target's singular vectors and the initial factors").min = 0;
  auto positive_int = [&](const std::string& key, int64_t def, const std::string& doc) {
    s.integer(key, def, doc).min = 1;
  };
  positive_int("task.m", 60, "rows of the target Y");
  positive_int("task.n", 70, "columns of the target Y");
  positive_int("task.rank", 5, "LoRA rank r (inner dimension of the factors)");
  auto& depth = s.integer("task.depth", 2, "number of factors L (2 = LoRA's A B)");
  depth.min = 2;
  depth.max = 16;
  s.number_list("task.target_sv", json::array({8, 5, 3, 1.5, 0.7}),
                "singular values of Y, descending").min = 0;
  auto& gamma = s.number("task.gamma", 1e-3, "scale of the Gaussian initial factors");
  gamma.min = 0;
  gamma.min_exclusive = true;
  s.string("task.init", "a_zero", {"a_zero", "b_zero"},
           "which factor starts at zero: a_zero = paper (A(0)=0), b_zero = PEFT (lora_B=0)");
  s.string("task.dtype", "float64", {"float64", "float32"}, "precision of the factors");
  s.string("task.target_file", nullptr, {}, "JSON {U, sigma, V} replacing the random target");
  s.string("task.init_file", nullptr, {}, "JSON {factors: [F_0, ..., F_{L-1}]} initial factors");
  s.string("device", "cpu", {"cpu", "cuda", "auto"}, "where tensors live");
  add_optimizer_keys(s);
  positive_int("train.steps", 3000, "optimizer steps");
  positive_int("train.log_every", 10, "log spectral metrics every N steps (and the last step)");
  s.number("train.stop_loss", 0.0, "stop once the loss is below this (0 = never)").min = 0;
  s.boolean("monitor.factors", true, "also log each factor's singular values");
  s.string("flow.method", "none", {"none", "euler", "rk4", "rk45"},
           "integrate the optimizer's flow instead of stepping it (gd/specgd fields); step k "
           "advances t by lr_k, euler = the optimizer's own step");
  auto& rtol = s.number("flow.rtol", 1e-8, "rk45 relative tolerance");
  rtol.min = 0;
  auto& atol = s.number("flow.atol", 1e-10, "rk45 absolute tolerance");
  atol.min = 0;
  return s;
}
}  // namespace

const ConfigSchema& mf_schema() {
  static const ConfigSchema schema = build();
  return schema;
}

void check_mf_config(const json& c, const std::string& where) {
  const auto& t = c.at("task");
  const int64_t m = t.at("m"), n = t.at("n"), r = t.at("rank");
  if (r > std::min(m, n)) {
    throw ConfigError(where + ": task.rank: expected an integer <= min(task.m, task.n) = " +
                      std::to_string(std::min(m, n)) + ", got " + std::to_string(r));
  }
  const auto sv = t.at("target_sv").get<std::vector<double>>();
  if (sv.empty() && !t.contains("target_file")) {
    throw ConfigError(where + ": task.target_sv: expected at least one singular value");
  }
  if (static_cast<int64_t>(sv.size()) > std::min(m, n)) {
    throw ConfigError(where + ": task.target_sv: expected at most min(task.m, task.n) = " +
                      std::to_string(std::min(m, n)) + " values, got " + std::to_string(sv.size()));
  }
  if (!std::is_sorted(sv.rbegin(), sv.rend())) {
    throw ConfigError(where + ": task.target_sv: expected values in descending order, got " +
                      t.at("target_sv").dump());
  }
  if (c.at("optim").at("name") == "hybrid") {
    throw ConfigError(where + ": optim.name: hybrid routes non-matrix tensors to AdamW; the "
                      "factorization has only matrices, use muon");
  }
  check_optimizer_config(c, where);
  const auto& flow = c.at("flow");
  if (flow.at("method") != "none") {
    const json o = resolved_optim(c.at("optim"));
    const std::string name = o.at("name");
    if (name == "adamw" || o.at("momentum").get<double>() != 0.0) {
      throw ConfigError(where + ": flow.method: the flow has the field of gd or specgd (sgd or "
                        "muon with momentum 0); got optim.name=" + name + " with momentum " +
                        o.at("momentum").dump());
    }
    if (o.at("weight_decay").get<double>() != 0.0) {
      throw ConfigError(where + ": flow.method: expected optim.weight_decay=0 with a flow, got " +
                        o.at("weight_decay").dump());
    }
    if (flow.at("method") == "rk45" && flow.at("rtol").get<double>() + flow.at("atol").get<double>() <= 0) {
      throw ConfigError(where + ": flow.rtol: expected flow.rtol or flow.atol > 0 for rk45");
    }
  }
}

MFConfig MFConfig::from_json(const json& c) {
  MFConfig m;
  m.name = c.at("name");
  m.seed = c.at("seed");
  const auto& t = c.at("task");
  m.m = t.at("m");
  m.n = t.at("n");
  m.rank = t.at("rank");
  m.depth = t.at("depth");
  m.target_sv = t.at("target_sv").get<std::vector<double>>();
  m.gamma = t.at("gamma");
  m.init = t.at("init");
  m.dtype = t.at("dtype");
  m.target_file = t.value("target_file", std::string());
  m.init_file = t.value("init_file", std::string());
  m.device = c.at("device");
  m.steps = c.at("train").at("steps");
  m.log_every = c.at("train").at("log_every");
  m.stop_loss = c.at("train").at("stop_loss");
  m.log_factors = c.at("monitor").at("factors");
  m.optim = resolved_optim(c.at("optim"));
  m.schedule = c.at("schedule");
  m.flow_method = c.at("flow").at("method");
  m.flow_rtol = c.at("flow").at("rtol");
  m.flow_atol = c.at("flow").at("atol");
  return m;
}

}  // namespace lorascope
