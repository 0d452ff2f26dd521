// lorascope pretrain | finetune | compare: the transformer recipes (trainer/train_recipe.h).
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "apps/commands.h"
#include "apps/python_script.h"
#include "trainer/metrics_writer.h"
#include "trainer/train_recipe.h"
#include "trainer/train_schema.h"

namespace lorascope::cli {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct TrainArgs {
  std::string config, out;
  std::vector<std::string> sets;
  std::string device;
  bool overwrite = false, resume = false, dry_run = false, keys = false;
};

CLI::App* add_common(CLI::App& app, const std::string& name, const std::string& help,
                     const std::shared_ptr<TrainArgs>& args) {
  auto* cmd = app.add_subcommand(name, help);
  cmd->add_option("--config", args->config, "JSON config; may describe several runs (runs, grid)");
  cmd->add_option("--out", args->out, "output directory: one subdirectory per run");
  cmd->add_option("--set", args->sets, "override a key, e.g. --set optim.lr=1e-3 (repeatable)");
  cmd->add_option("--device", args->device, "auto | cpu | cuda (same as --set device=...)")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  cmd->add_flag("--overwrite", args->overwrite, "replace existing run directories");
  cmd->add_flag("--resume", args->resume, "continue each run from its newest checkpoint");
  cmd->add_flag("--dry-run", args->dry_run, "print the resolved runs and exit");
  cmd->add_flag("--keys", args->keys, "list every config key with its default and exit");
  return cmd;
}

// Resolves, validates every run before writing, then trains them in order.
int train_runs(const TrainArgs& a, const std::string& mode, const std::string& command) {
  if (a.keys) {
    std::printf("%s", train_schema().describe().c_str());
    return 0;
  }
  auto sets = a.sets;
  sets.insert(sets.begin(), "mode=" + mode);
  if (!a.device.empty()) sets.push_back("device=" + a.device);
  auto runs = resolve_runs(a.config, sets, train_schema(), check_train_config);
  if (a.dry_run) {
    for (const auto& r : runs) std::printf("%s\n%s\n", r.name.c_str(), r.config.dump(2).c_str());
    return 0;
  }
  if (a.out.empty()) throw ConfigError(command + ": --out: expected an output directory");
  for (const auto& r : runs) {
    try {
      validate_train_run(r);
    } catch (const std::runtime_error& e) {
      throw ConfigError(e.what());
    }
    const fs::path dir = fs::path(a.out) / r.name;
    if (fs::exists(dir) && !a.overwrite && !a.resume) {
      throw ConfigError(dir.string() + ": already exists; pass --overwrite to replace it or --resume");
    }
  }
  fs::create_directories(a.out);
  json index = {{"command", command}, {"config", a.config}, {"sets", a.sets}, {"runs", json::array()}};
  int code = 0;
  for (const auto& r : runs) {
    const fs::path dir = fs::path(a.out) / r.name;
    // --overwrite: the old run is moved aside and only deleted once the new one has started.
    fs::path aside;
    if (fs::exists(dir) && a.overwrite && !a.resume) {
      aside = dir.string() + ".replaced";
      fs::remove_all(aside);
      fs::rename(dir, aside);
    }
    TrainOutcome outcome;
    try {
      outcome = run_train(r, dir.string(), a.resume);
    } catch (...) {
      if (!aside.empty() && !fs::exists(dir)) fs::rename(aside, dir);
      throw;
    }
    if (!aside.empty()) fs::remove_all(aside);
    index["runs"].push_back({{"name", r.name}, {"dir", r.name}, {"overrides", r.overrides},
                             {"status", outcome.status}});
    write_json_atomic((fs::path(a.out) / "index.json").string(), index);
    const auto& s = outcome.summary;
    if (outcome.status == "halted") {
      std::fprintf(stderr, "lorascope: run %s: halted at train.halt_at_step (resume with --resume)\n",
                   r.name.c_str());
      code = 3;
      continue;
    }
    if (outcome.status != "completed") {
      std::fprintf(stderr, "lorascope: run %s: %s; stopped this run\n", r.name.c_str(),
                   s.value("message", std::string("diverged")).c_str());
      code = 3;
      continue;
    }
    std::fprintf(stderr, "%s: %lld steps, validation %s, test %s, %.1fs\n", r.name.c_str(),
                 static_cast<long long>(s["steps"].get<int64_t>()), s["validation"].dump().c_str(),
                 s["test"].dump().c_str(), s["wall_seconds"].get<double>());
  }
  return code;
}

}  // namespace

Command add_pretrain_command(CLI::App& app) {
  auto args = std::make_shared<TrainArgs>();
  auto* cmd = add_common(app, "pretrain", "train a small base transformer on a text corpus "
                         "(full parameters); writes model.pt, model_config.json, tokenizer.model",
                         args);
  cmd->footer("Example: lorascope pretrain --config configs/lm/pretrain_brown.json --out runs/base");
  return [args] { return train_runs(*args, "pretrain", "pretrain"); };
}

Command add_finetune_command(CLI::App& app) {
  auto args = std::make_shared<TrainArgs>();
  auto* cmd = add_common(app, "finetune", "LoRA fine-tune a base model on a task, logging every "
                         "adapter's singular values", args);
  cmd->footer("Example: lorascope finetune --config configs/lm/finetune_spam.json --out runs/ft "
              "--set base=runs/base/brown");
  return [args] { return train_runs(*args, "finetune", "finetune"); };
}

Command add_compare_command(CLI::App& app) {
  auto args = std::make_shared<TrainArgs>();
  auto* cmd = add_common(app, "compare", "run the same fine-tune under several optimizers (same "
                         "seed and data order) and write a report", args);
  cmd->footer("Example: lorascope compare --config configs/lm/compare_spam.json --out runs/compare");
  return [args]() -> int {
    const int code = train_runs(*args, "finetune", "compare");
    if (args->dry_run || args->keys) return code;
    const int report = run_python_script("report.py", {args->out});
    if (report != 0) {
      std::fprintf(stderr, "lorascope: compare: report failed (report.py exited %d)\n", report);
      return code != 0 ? code : 1;
    }
    std::fprintf(stderr, "report: %s/report.md\n", args->out.c_str());
    return code;
  };
}

}  // namespace lorascope::cli
