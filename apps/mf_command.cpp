// lorascope mf: the matrix-factorization studies of muon-lora-uniform-growth.md (Fig. 2-4, 7-11).
#include <cstdio>
#include <memory>
#include <string>

#include "apps/commands.h"
#include "apps/sweep.h"
#include "trainer/mf_recipe.h"
#include "trainer/mf_schema.h"

namespace lorascope::cli {

Command add_mf_command(CLI::App& app) {
  auto args = std::make_shared<SweepArgs>();
  auto* cmd = app.add_subcommand("mf", "train LoRA-style factorizations W = A B (or deeper) on "
                                       "Y = U Sigma V^T and log their spectra");
  add_sweep_options(cmd, *args, /*with_resume=*/false);
  cmd->footer("Example: lorascope mf --config configs/mf/fig2_specgd_vs_gd.json --out runs/fig2\n"
              "Each run writes OUT/NAME/{config.json, metrics.jsonl, summary.json}; OUT/index.json "
              "lists the runs.");

  return [args]() -> int {
    SweepSpec spec;
    spec.command = "mf";
    spec.schema = &mf_schema();
    spec.check = check_mf_config;
    spec.validate = [](const RunSpec& r) { (void)mf_setup(MFConfig::from_json(r.config)); };
    spec.run = [](const RunSpec& r, const std::string& dir, bool) {
      auto outcome = run_mf(r, dir);
      return RunResult{outcome.status, outcome.summary};
    };
    spec.describe = [](const RunSpec& r, const RunResult& res) {
      const auto& s = res.summary;
      char line[512];
      std::snprintf(line, sizeof line,
                    "%-32s %6lld steps  loss %.3e  (best rank-r %.3e)  order %s  %.2fs",
                    r.name.c_str(), static_cast<long long>(s["steps"].get<int64_t>()),
                    s["final_loss"].get<double>(), s["best_rank_loss"].get<double>(),
                    s["learning_order"].get<std::string>().c_str(),
                    s["train_seconds"].get<double>());
      return std::string(line);
    };
    return run_sweep(*args, spec);
  };
}

}  // namespace lorascope::cli
