// The edge-of-stability recipe: one resolved config in, one run directory out.
//
//   setup:  the seed draws M* = U diag(s) V^T first and the layers second, so every learning
//           rate of a run (and runs that differ only in the learning rate) start from the same
//           target and the same weights.
//   loop:   per learning rate, plain GD W_l <- W_l - eta grad_l for train.steps steps; a record
//           every log_every steps (with the top-k sharpness every sharpness_every steps); the
//           last train.late_window steps feed the late-phase summary; NaN/Inf stops that
//           trajectory as "diverged".
//   output: RUN_DIR/config.json, metrics.jsonl (records carry "lr"), summary.json with one entry
//           per learning rate under "points" and Lemma 1's thresholds under "theory".
// A run with one learning rate is "diverged" when it diverges (exit 3); in a sweep of several,
// divergence is a point of the diagram (the route to chaos ends there) and the run completes.
#pragma once

#include <nlohmann/json.hpp>

#include <random>
#include <string>

#include "trainer/config.h"
#include "trainer/eos_monitor.h"
#include "trainer/eos_schema.h"
#include "trainer/metrics_writer.h"

namespace lorascope {

struct EosSetup {
  EosTarget target;
  DeepLinear net;
};
EosSetup eos_setup(const EosConfig& cfg);

// Lemma 1 in this run's loss convention: lambda_1, lambda_12 (deep network) or L s_2^(2-2/L)
// (diagonal network), and the learning rates 2/lambda where they stop being stable.
nlohmann::json eos_theory(const EosConfig& cfg);

// One GD trajectory at learning rate eta from the setup's initial weights; records go to sink.
nlohmann::json train_eos_point(const EosConfig& cfg, const EosSetup& setup, double eta,
                               MetricsSink& sink);

struct EosOutcome {
  std::string status;  // "completed" | "diverged"
  nlohmann::json summary;
};
EosOutcome train_eos(const EosConfig& cfg, MetricsSink& sink);
// Creates run_dir, writes config.json, metrics.jsonl and summary.json.
EosOutcome run_eos(const RunSpec& run, const std::string& run_dir);

}  // namespace lorascope
