#include "trainer/pretrained_mf_schema.h"

#include <algorithm>

namespace lorascope {

using nlohmann::json;

namespace {
ConfigSchema build() {
  ConfigSchema s;
  s.string("name", "pretrained_mf", {}, "run name (a directory under --out)");
  s.integer("seed", 0, "draws Y_pre, then G, then the LoRA factors (same seed = same task)").min = 0;
  auto positive_int = [&](const std::string& key, int64_t def, const std::string& doc) {
    s.integer(key, def, doc).min = 1;
  };
  auto positive = [&](const std::string& key, double def, const std::string& doc) {
    auto& k = s.number(key, def, doc);
    k.min = 0;
    k.min_exclusive = true;
  };
  positive_int("task.m", 10, "rows of Y_pre and of W2");
  positive_int("task.n", 10, "columns of Y_pre and of W1");
  positive_int("task.h", 100, "inner width of the pretrained model W2 W1 (h >= min(m, n))");
  positive("task.scale", 1.05,
           "W2 = scale U S^(1/2) G^T, W1 = G S^(1/2) V^T / scale; delta_w = 1/scale^2");
  positive("task.sigma", 5.0, "Y_ft = Y_pre + sigma u v^T");
  s.string("task.pair", "top", {"top", "bottom"},
           "the singular pair (u, v) of Y_pre that Delta Y lies on (Sec. 5.1: top; App. H.1: both)");
  positive_int("lora.rank", 4, "LoRA rank r of both adapters");
  s.string("lora.init", "small", {"small", "spectral"},
           "small: A ~ N(0, alpha^2), B = 0 (Sec. 2); spectral: Sec. 4's init from Delta Y and W2");
  positive("lora.alpha", 1e-3, "initialization scale alpha");
  positive("train.lr", 1e-4, "gradient-descent step (Sec. 5.1: 1e-4, a discretized flow)");
  positive_int("train.steps", 30000, "GD steps (flow time = steps * lr)");
  positive_int("train.log_every", 100, "log loss and alignment every N steps (and the last step)");
  return s;
}
}  // namespace

const ConfigSchema& pretrained_mf_schema() {
  static const ConfigSchema schema = build();
  return schema;
}

void check_pretrained_mf_config(const json& c, const std::string& where) {
  const auto& t = c.at("task");
  const int64_t m = t.at("m"), n = t.at("n"), h = t.at("h"), r = c.at("lora").at("rank");
  const int64_t k = std::min(m, n);
  if (h < k) {
    throw ConfigError(where + ": task.h: expected an integer >= min(task.m, task.n) = " +
                      std::to_string(k) + " (W2 W1 must reproduce Y_pre), got " + std::to_string(h));
  }
  if (r > k) {
    throw ConfigError(where + ": lora.rank: expected an integer <= min(task.m, task.n) = " +
                      std::to_string(k) + ", got " + std::to_string(r));
  }
}

PretrainedMFConfig PretrainedMFConfig::from_json(const json& c) {
  PretrainedMFConfig p;
  p.name = c.at("name");
  p.seed = c.at("seed");
  const auto& t = c.at("task");
  p.m = t.at("m");
  p.n = t.at("n");
  p.h = t.at("h");
  p.scale = t.at("scale");
  p.sigma = t.at("sigma");
  p.pair = t.at("pair");
  const auto& l = c.at("lora");
  p.rank = l.at("rank");
  p.init = l.at("init");
  p.alpha = l.at("alpha");
  const auto& tr = c.at("train");
  p.lr = tr.at("lr");
  p.steps = tr.at("steps");
  p.log_every = tr.at("log_every");
  return p;
}

}  // namespace lorascope
