// The edge-of-stability experiment (deep-mf-edge-of-stability.md): config keys and the typed view
// the recipe uses. One run trains one network at one or many learning rates: a list
// (eos.lrs) or an evenly spaced range (eos.lr_range) makes a whole bifurcation diagram one run.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "trainer/config.h"

namespace lorascope {

const ConfigSchema& eos_schema();
// Target fits in d and is descending and positive; the init suits the network; lr list/range
// well formed (ConfigError).
void check_eos_config(const nlohmann::json& config, const std::string& where);

struct EosConfig {
  std::string name;
  int64_t seed = 0;
  int64_t d = 0;
  int depth = 3;
  std::vector<double> target_sv;
  std::string target_basis, network, init, convention, lr_unit;
  double alpha = 0;
  double lr = 0;
  std::vector<double> lrs, lr_range;
  int64_t steps = 0, log_every = 1, late_window = 0, sharpness_every = 0;
  int sharpness_k = 1, lanczos_iters = 0;
  double amplitude_tol = 0;
  bool log_layers = true;

  // 1/2 for the theory's loss, 1 for the figures' code (no 1/2).
  double loss_scale() const { return convention == "figures" ? 1.0 : 0.5; }
  // The learning rates in absolute units, in run order.
  std::vector<double> learning_rates() const;

  static EosConfig from_json(const nlohmann::json& config);
};

}  // namespace lorascope
