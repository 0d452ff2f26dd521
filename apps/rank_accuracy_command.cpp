// lorascope rank-accuracy: the gradient-flow claims of lora-rank-accuracy-gradient-flow.md
// (trace-squared and Frobenius LoRA flows, their closed forms, Algorithm 1).
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>

#include "apps/commands.h"
#include "apps/sweep.h"
#include "trainer/rank_accuracy_recipe.h"
#include "trainer/rank_accuracy_schema.h"

namespace lorascope::cli {

namespace {
double number(const nlohmann::json& s, const char* key) {
  return s.contains(key) && s[key].is_number() ? s[key].get<double>() : NAN;
}
}  // namespace

Command add_rank_accuracy_command(CLI::App& app) {
  auto args = std::make_shared<SweepArgs>();
  auto* cmd = app.add_subcommand(
      "rank-accuracy", "integrate the LoRA gradient flow of 1/2 Tr^2(W0 - BA) or "
                       "1/2 ||W0 - BA||^2 beside a full-rank reference and its closed forms");
  add_sweep_options(cmd, *args, /*with_resume=*/false);
  cmd->footer("Example: lorascope rank-accuracy --config configs/rank_accuracy/trace_closed_form.json "
              "--out runs/ra_trace\nEach run writes OUT/NAME/{config.json, metrics.jsonl, "
              "summary.json}; OUT/index.json lists the runs.");

  return [args]() -> int {
    SweepSpec spec;
    spec.command = "rank-accuracy";
    spec.schema = &rank_accuracy_schema();
    spec.check = check_rank_accuracy_config;
    spec.run = [](const RunSpec& r, const std::string& dir, bool) {
      auto outcome = run_rank_accuracy(r, dir);
      return RunResult{outcome.status, outcome.summary};
    };
    spec.describe = [](const RunSpec& r, const RunResult& res) {
      const auto& s = res.summary;
      char line[512];
      if (s.contains("mean_R2")) {
        std::snprintf(line, sizeof line, "%-32s %lld samples  mean R^2 %.4f  eq.34 %.4f  (%+.2f%%)  %.2fs",
                      r.name.c_str(), static_cast<long long>(s["samples"].get<int64_t>()),
                      number(s, "mean_R2"), number(s, "expected_R2_eq34"),
                      100 * number(s, "R2_rel_diff"), number(s, "train_seconds"));
      } else {
        std::snprintf(line, sizeof line,
                      "%-32s t=%g  loss %.3e  full %.3e  R %.4f  closed-form gap %.1e  %.2fs",
                      r.name.c_str(), number(s, "t_end"), number(s, "final_loss"),
                      number(s, "final_loss_full"), number(s, "final_rel_error"),
                      number(s, "max_closed_gap"), number(s, "train_seconds"));
      }
      return std::string(line);
    };
    return run_sweep(*args, spec);
  };
}

}  // namespace lorascope::cli
