// Per-optimizer learning-rate sweeps for `lorascope compare` (issue 19, "fair comparison"): each
// optimizer is compared at its own best learning rate, not at one hand-picked value.
//
//   "runs": [{"name": "muon",  "optim.name": "muon",  "sweep": {"lr": [0.005, 0.01, 0.02, 0.04]}},
//            {"name": "adamw", "optim.name": "adamw", "sweep": {"lr": {"from": 1e-4, "to": 1e-2, "points": 5}}}]
//
// A run with sweep.lr becomes one run per learning rate, named NAME-lrVALUE, with optim.lr set.
// {"from", "to", "points"} is a log-spaced range, each value rounded to 3 significant digits (so
// the run name is the value used). After the runs, each run's best point is the completed one with
// the best validation metric: accuracy (higher is better) when the task is classification, else
// validation loss (lower); one metric for the whole compare so the optimizers are ranked alike.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "trainer/config.h"

namespace lorascope {

// sweep.lr, sweep.lr.from, sweep.lr.to, sweep.lr.points (train_schema()).
void add_lr_sweep_keys(ConfigSchema& schema);
constexpr int64_t kMaxSweepPoints = 25;  // per run: every point is a full fine-tune

// The learning rates a resolved (nested) run config asks for; empty without sweep.lr. Throws
// ConfigError("WHERE: sweep.lr...: expected ..., got ...").
std::vector<double> sweep_learning_rates(const nlohmann::json& config, const std::string& where);

struct LrSweepGroup {
  std::string name;                // the run as the config names it ("muon")
  std::vector<double> lrs;         // in the order run
  std::vector<std::string> runs;   // one run name per lr ("muon-lr0.01")
};
using LrSweepPlan = std::vector<LrSweepGroup>;

// Replaces each run with sweep.lr by one run per learning rate (sweep keys dropped, optim.lr set,
// "optim.lr" added to its overrides). A sweep next to a runs / grid / --set value of optim.lr is
// refused: one of the two would silently win. Runs without a sweep pass through unchanged.
std::vector<RunSpec> expand_lr_sweeps(const std::vector<RunSpec>& runs,
                                      const std::vector<std::string>& sets,
                                      const std::string& where, LrSweepPlan* plan);

struct SweepPoint {
  double lr = 0;
  std::string run, status;     // status from summary.json; "missing" without one
  nlohmann::json validation;   // summary.json's "validation" ({"loss", "accuracy"|"perplexity"})
};
// "accuracy" when any completed point reports one, else "loss".
std::string sweep_metric(const std::vector<SweepPoint>& points);
// Index of the completed point with the best finite metric (the smaller lr on a tie), or -1.
int best_point(const std::vector<SweepPoint>& points, const std::string& metric);

// Reads OUT_DIR/RUN/summary.json of every point, picks each group's best and writes
// OUT_DIR/sweep.json: {"metric", "better", "groups": [{"name", "points": [...], "best"}]}.
nlohmann::json summarize_lr_sweeps(const LrSweepPlan& plan, const std::string& out_dir);

}  // namespace lorascope
