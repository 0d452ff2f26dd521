// lorascope eos: deep matrix factorization beyond the edge of stability
// (deep-mf-edge-of-stability.md, Fig. 1, 5, 16): GD on a deep linear network at one or many
// learning rates, logging sharpness and late-phase singular values for bifurcation diagrams.
#include <cstdio>
#include <memory>
#include <string>

#include "apps/commands.h"
#include "apps/sweep.h"
#include "trainer/eos_recipe.h"
#include "trainer/eos_schema.h"

namespace lorascope::cli {

Command add_eos_command(CLI::App& app) {
  auto args = std::make_shared<SweepArgs>();
  auto* cmd = app.add_subcommand("eos", "GD on deep linear networks past the edge of stability: "
                                        "sharpness, 2-cycles and bifurcation diagrams");
  add_sweep_options(cmd, *args, /*with_resume=*/false);
  cmd->footer("Example: lorascope eos --config configs/eos/fig1_bifurcation.json --out runs/eos_fig1\n"
              "Each run writes OUT/NAME/{config.json, metrics.jsonl, summary.json}; eos.lrs or "
              "eos.lr_range put a whole learning-rate sweep in one run. lorascope plot OUT draws it.");

  return [args]() -> int {
    SweepSpec spec;
    spec.command = "eos";
    spec.schema = &eos_schema();
    spec.check = check_eos_config;
    spec.run = [](const RunSpec& r, const std::string& dir, bool) {
      auto outcome = run_eos(r, dir);
      return RunResult{outcome.status, outcome.summary};
    };
    spec.describe = [](const RunSpec& r, const RunResult& res) {
      const auto& s = res.summary;
      int oscillating = 0;
      for (const auto& p : s["points"]) oscillating += p.value("oscillating_components", 0) > 0;
      char line[512];
      std::snprintf(line, sizeof line,
                    "%-28s %zu lr(s): %d oscillating, %d diverged  (2/lambda_1 = %.5g)  %.2fs",
                    r.name.c_str(), s["points"].size(), oscillating,
                    s["diverged_points"].get<int>(), s["theory"]["lr_threshold"].get<double>(),
                    s["train_seconds"].get<double>());
      return std::string(line);
    };
    return run_sweep(*args, spec);
  };
}

}  // namespace lorascope::cli
