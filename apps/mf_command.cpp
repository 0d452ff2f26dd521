// lorascope mf: the matrix-factorization studies of muon-lora-uniform-growth.md (Fig. 2-4, 7-11).
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "apps/commands.h"
#include "trainer/metrics_writer.h"
#include "trainer/mf_recipe.h"
#include "trainer/mf_schema.h"

namespace lorascope::cli {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {
struct MFArgs {
  std::string config, out;
  std::vector<std::string> sets;
  bool overwrite = false, dry_run = false, keys = false;
};
}  // namespace

Command add_mf_command(CLI::App& app) {
  auto args = std::make_shared<MFArgs>();
  auto* cmd = app.add_subcommand("mf", "train LoRA-style factorizations W = A B (or deeper) on "
                                       "Y = U Sigma V^T and log their spectra");
  cmd->add_option("--config", args->config, "JSON config; may describe several runs (runs, grid)");
  cmd->add_option("--out", args->out, "output directory: one subdirectory per run");
  cmd->add_option("--set", args->sets, "override a key, e.g. --set optim.lr=0.02 (repeatable)")
      ->allow_extra_args(false);
  cmd->add_flag("--overwrite", args->overwrite, "replace existing run directories");
  cmd->add_flag("--dry-run", args->dry_run, "print the resolved runs and exit");
  cmd->add_flag("--keys", args->keys, "list every config key with its default and exit");
  cmd->footer("Example: lorascope mf --config configs/mf/fig2_specgd_vs_gd.json --out runs/fig2\n"
              "Each run writes OUT/NAME/{config.json, metrics.jsonl, summary.json}; OUT/index.json "
              "lists the runs.");

  return [args]() -> int {
    if (args->keys) {
      std::printf("%s", mf_schema().describe().c_str());
      return 0;
    }
    auto runs = resolve_runs(args->config, args->sets, mf_schema(), check_mf_config);
    if (args->dry_run) {
      for (const auto& r : runs) std::printf("%s\n%s\n", r.name.c_str(), r.config.dump(2).c_str());
      return 0;
    }
    if (args->out.empty()) throw ConfigError("mf: --out: expected an output directory");
    // Everything that can fail on input is checked before the first byte is written.
    for (const auto& r : runs) {
      try {
        (void)mf_setup(MFConfig::from_json(r.config));
      } catch (const std::runtime_error& e) {  // target_file / init_file problems are input errors
        throw ConfigError(e.what());
      }
      const fs::path dir = fs::path(args->out) / r.name;
      if (fs::exists(dir) && !args->overwrite) {
        throw ConfigError(dir.string() + ": already exists; pass --overwrite to replace it");
      }
    }
    fs::create_directories(args->out);
    json index = {{"command", "mf"}, {"config", args->config}, {"sets", args->sets},
                  {"runs", json::array()}};
    int code = 0;
    for (const auto& r : runs) {
      const fs::path dir = fs::path(args->out) / r.name;
      if (fs::exists(dir)) fs::remove_all(dir);
      auto outcome = run_mf(r, dir.string());
      const auto& s = outcome.summary;
      index["runs"].push_back(
          {{"name", r.name}, {"dir", r.name}, {"overrides", r.overrides}, {"status", outcome.status}});
      write_json_atomic((fs::path(args->out) / "index.json").string(), index);
      if (outcome.status != "completed") {
        std::fprintf(stderr, "lorascope: run %s: %s; stopped this run (metrics up to it kept)\n",
                     r.name.c_str(), s.value("message", std::string("diverged")).c_str());
        code = 3;
        continue;
      }
      std::fprintf(stderr, "%-32s %6lld steps  loss %.3e  (best rank-r %.3e)  order %s  %.2fs\n",
                   r.name.c_str(), static_cast<long long>(s["steps"].get<int64_t>()),
                   s["final_loss"].get<double>(), s["best_rank_loss"].get<double>(),
                   s["learning_order"].get<std::string>().c_str(),
                   s["train_seconds"].get<double>());
    }
    return code;
  };
}

}  // namespace lorascope::cli
