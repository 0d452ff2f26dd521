// The pretrained-LoRA factorization experiment (lora-learning-dynamics-matrix-factorization.md,
// Problem 2, Sec. 5.1, App. H.1): its config keys and the typed view the recipe uses.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "trainer/config.h"

namespace lorascope {

const ConfigSchema& pretrained_mf_schema();
// min(m, n) <= h and lora.rank <= min(m, n) (ConfigError naming the key).
void check_pretrained_mf_config(const nlohmann::json& config, const std::string& where);

struct PretrainedMFConfig {
  std::string name;
  int64_t seed = 0;
  int64_t m = 0, n = 0, h = 0;
  double scale = 0, sigma = 0;
  std::string pair;  // "top" | "bottom"
  int64_t rank = 0;
  std::string init;  // "small" | "spectral"
  double alpha = 0;
  double lr = 0;
  int64_t steps = 0, log_every = 1;

  static PretrainedMFConfig from_json(const nlohmann::json& config);
};

}  // namespace lorascope
