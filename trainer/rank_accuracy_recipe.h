// The rank-accuracy recipe (lora-rank-accuracy-gradient-flow.md): one resolved config in, one
// run directory out.
//
//   setup:  W0 (seeded) -> its SVD -> (B0 = 0, A0) by gaussian or spectral init -> U0 = B0 A0.
//   loop:   the LoRA pair and the full-rank reference U advance together, as one state
//           [B, A, U], by the flow's vector field (euler | rk4 | rk45) or by Algorithm 1 (U by
//           plain GD with the same alpha); records at every log_every_t of flow time carry the
//           simulated values beside the closed forms (a(t), p, q, per-mode y x, U(t)).
//   mc:     mc.samples > 1 integrates one flow per X0 draw to t_end and writes one line per
//           sample with the simulated relative error R and eq. (33); the summary holds the mean
//           of R^2 against eq. (34).
//   output: RUN_DIR/config.json, metrics.jsonl, summary.json.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "models/lora_flow_problem.h"
#include "trainer/config.h"
#include "trainer/metrics_writer.h"
#include "trainer/rank_accuracy_schema.h"

namespace lorascope {

struct RankAccuracyOutcome {
  std::string status;  // "completed" | "diverged"
  nlohmann::json summary;
};

// Trains in memory, sending records to sink. Never throws on divergence: reports it.
RankAccuracyOutcome train_rank_accuracy(const RankAccuracyConfig& cfg, MetricsSink& sink);
// Creates run_dir, writes config.json, metrics.jsonl and summary.json.
RankAccuracyOutcome run_rank_accuracy(const RunSpec& run, const std::string& run_dir);

}  // namespace lorascope
