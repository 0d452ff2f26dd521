// lorascope pretrained-mf: LoRA on a pretrained two-factor model, the matrix-factorization
// experiments of lora-learning-dynamics-matrix-factorization.md (Problem 2, Fig. 1, Fig. 3-4).
#include <cstdio>
#include <memory>
#include <string>

#include "apps/commands.h"
#include "apps/sweep.h"
#include "trainer/pretrained_mf_recipe.h"
#include "trainer/pretrained_mf_schema.h"

namespace lorascope::cli {

Command add_pretrained_mf_command(CLI::App& app) {
  auto args = std::make_shared<SweepArgs>();
  auto* cmd = app.add_subcommand(
      "pretrained-mf", "fine-tune a pretrained W2 W1 with LoRA on both factors, "
                       "(W2 + B2 A2)(W1 + B1 A1) ~ Y_pre + sigma u v^T, by GD; log loss and "
                       "alignment");
  add_sweep_options(cmd, *args, /*with_resume=*/false);
  cmd->footer(
      "Example: lorascope pretrained-mf --config configs/pretrained_mf/fig1.json --out runs/fig1\n"
      "Each run writes OUT/NAME/{config.json, metrics.jsonl, summary.json}; OUT/index.json lists "
      "the runs and OUT/seed_summary.json gives mean and std over seeds per run group.");

  return [args]() -> int {
    SweepSpec spec;
    spec.command = "pretrained-mf";
    spec.schema = &pretrained_mf_schema();
    spec.check = check_pretrained_mf_config;
    spec.run = [](const RunSpec& r, const std::string& dir, bool) {
      auto outcome = run_pretrained_mf(r, dir);
      return RunResult{outcome.status, outcome.summary};
    };
    spec.describe = [](const RunSpec& r, const RunResult& res) {
      const auto& s = res.summary;
      char line[512];
      std::snprintf(line, sizeof line, "%-40s %7lld steps  loss %.3e  1-cos %.3e  ||Z1|| %.3f  %.2fs",
                    r.name.c_str(), static_cast<long long>(s["steps"].get<int64_t>()),
                    s["final_loss"].get<double>(), s["final_one_minus_cos"].get<double>(),
                    s["final_z1_norm"].get<double>(), s["train_seconds"].get<double>());
      return std::string(line);
    };
    const int code = run_sweep(*args, spec);
    if (args->keys || args->dry_run) return code;
    const auto summary = summarize_over_seeds(args->out);
    for (const auto& g : summary["groups"]) {
      const auto& loss = g["final_loss"];
      std::fprintf(stderr, "%-48s %2zu seeds  final loss %.3e +- %.3e  log10 %.2f +- %.2f\n",
                   g["label"].dump().c_str(), g["seeds"].size(), loss["mean"].get<double>(),
                   loss["std"].get<double>(), g["log10_final_loss"]["mean"].get<double>(),
                   g["log10_final_loss"]["std"].get<double>());
    }
    return code;
  };
}

}  // namespace lorascope::cli
