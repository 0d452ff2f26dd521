// The matrix-factorization recipe: one resolved config in, one run directory out.
//
//   setup:  target Y (seeded, or target_file) -> factors (seeded, or init_file) -> optimizer
//           -> schedule; the seed draws Y first and the factors second, so runs that differ only
//           in the optimizer start from the same Y and the same factors.
//   loop:   loss and analytic gradients, NaN/Inf check, lr from the schedule, optimizer step;
//           metrics at step 0, every log_every steps and at the last step.
//   output: RUN_DIR/config.json, metrics.jsonl, summary.json.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "data/mf_target.h"
#include "models/factorization.h"
#include "trainer/config.h"
#include "trainer/metrics_writer.h"
#include "trainer/mf_schema.h"

namespace lorascope {

struct MFSetup {
  MFTarget target;
  Factorization factors;
};
// Builds target and initial factors from the config (errors name target_file / init_file).
MFSetup mf_setup(const MFConfig& cfg);

struct MFOutcome {
  std::string status;  // "completed" | "diverged"
  nlohmann::json summary;
};

// Trains in memory, sending records to sink. Never throws on divergence: reports it.
MFOutcome train_mf(const MFConfig& cfg, MFSetup& setup, MetricsSink& sink);
// Creates run_dir (must not exist), writes config.json, metrics.jsonl and summary.json.
MFOutcome run_mf(const RunSpec& run, const std::string& run_dir);

}  // namespace lorascope
