// The pretrained-LoRA factorization recipe (lora-learning-dynamics-matrix-factorization.md,
// Problem 2, Fig. 1, Fig. 3-4): one resolved config in, one run directory out.
//
//   setup:  Y_pre, then G (the pretrained W2, W1 and Y_ft), then the LoRA factors, all from
//           `seed`; runs that differ only in lora.* or train.* share the task.
//   loop:   GD on all four LoRA factors; NaN/Inf -> status "diverged"; records at step 0, every
//           log_every steps and the last step: loss, one_minus_cos, z1_norm, z2_norm.
//   output: RUN_DIR/config.json, metrics.jsonl, summary.json; after a sweep,
//           OUT/seed_summary.json (mean and std over seeds of each run group's final numbers).
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "models/pretrained_lora_mf.h"
#include "trainer/config.h"
#include "trainer/metrics_writer.h"
#include "trainer/pretrained_mf_schema.h"

namespace lorascope {

struct PretrainedMFSetup {
  PretrainedMF mf;
  LoraFactors lora;
};
PretrainedMFSetup pretrained_mf_setup(const PretrainedMFConfig& cfg);

struct PretrainedMFOutcome {
  std::string status;  // "completed" | "diverged"
  nlohmann::json summary;
};

// Trains in memory, sending records to sink. Never throws on divergence: reports it.
//
// summary: final_loss, initial_loss, final_one_minus_cos, final_z1_norm, final_z2_norm, and two
// logged steps that separate the phases of Sec. 3: align_step (first with one_minus_cos <= 1e-3)
// and drop_step (first with loss <= L(0)/2), null when never reached.
PretrainedMFOutcome train_pretrained_mf(const PretrainedMFConfig& cfg, PretrainedMFSetup& setup,
                                        MetricsSink& sink);
// Creates run_dir, writes config.json, metrics.jsonl and summary.json.
PretrainedMFOutcome run_pretrained_mf(const RunSpec& run, const std::string& run_dir);

// Groups the completed runs of OUT/index.json by their config without name and seed, and gives
// per group: label (its overrides without seed), seeds, and mean / std (population) over seeds
// of final_loss, log10(final_loss) and final_one_minus_cos. Writes OUT/seed_summary.json and
// returns it.
nlohmann::json summarize_over_seeds(const std::string& out_dir);

}  // namespace lorascope
