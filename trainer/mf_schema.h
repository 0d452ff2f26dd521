// The matrix-factorization experiment: its config keys and the typed view the recipe uses.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "trainer/config.h"

namespace lorascope {

const ConfigSchema& mf_schema();
// rank <= min(m, n), spectrum fits and is descending, optimizer combinations (ConfigError).
void check_mf_config(const nlohmann::json& config, const std::string& where);

struct MFConfig {
  std::string name;
  int64_t seed = 0;
  int64_t m = 0, n = 0, rank = 0;
  int depth = 2;
  std::vector<double> target_sv;
  double gamma = 0;
  std::string init, dtype, target_file, init_file, device;
  int64_t steps = 0, log_every = 1;
  double stop_loss = 0;
  bool log_factors = true;
  nlohmann::json optim, schedule;
  std::string flow_method = "none";  // none | euler | rk4 | rk45 (trainer/mf_flow.h)
  double flow_rtol = 1e-8, flow_atol = 1e-10;

  static MFConfig from_json(const nlohmann::json& config);
};

}  // namespace lorascope
