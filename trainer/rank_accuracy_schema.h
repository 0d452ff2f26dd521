// The rank-accuracy experiment (lora-rank-accuracy-gradient-flow.md): config keys and the typed
// view its recipe uses.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "trainer/config.h"

namespace lorascope {

const ConfigSchema& rank_accuracy_schema();
// m = n for trace_squared, rank < min(n, m), step sizes that divide the log interval, ...
void check_rank_accuracy_config(const nlohmann::json& config, const std::string& where);

struct RankAccuracyConfig {
  std::string name;
  int64_t seed = 0;
  std::string loss, w0, init;
  int64_t n = 0, m = 0, rank = 0;
  double w0_scale = 1, sigma = 1;
  std::vector<double> target_sv;
  std::string method;  // euler | rk4 | rk45 | algorithm1
  double dt = 0, lambda = 1, rtol = 0, atol = 0;
  int64_t k = 1;
  double t_end = 0, log_every_t = 0;
  int64_t samples = 1;

  // Flow time of one fixed step: dt (euler, rk4) or k dt (one Algorithm 1 iteration).
  double step_time() const { return method == "algorithm1" ? dt * static_cast<double>(k) : dt; }
  static RankAccuracyConfig from_json(const nlohmann::json& config);
};

}  // namespace lorascope
