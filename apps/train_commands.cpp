// lorascope pretrain | finetune | compare: the transformer recipes (trainer/train_recipe.h).
#include <ATen/Context.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "apps/commands.h"
#include "apps/python_script.h"
#include "apps/sweep.h"
#include "trainer/lr_sweep.h"
#include "trainer/metrics_writer.h"
#include "trainer/train_recipe.h"
#include "trainer/train_schema.h"

namespace lorascope::cli {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct TrainArgs {
  SweepArgs sweep;
  std::string device;
  std::string dist_backend = "auto";
  double dist_timeout_s = 300;
  bool no_shard_muon = false, no_overlap = false;
  std::string model;  // --model DIR = --set base=DIR
};

CLI::App* add_common(CLI::App& app, const std::string& name, const std::string& help,
                     const std::shared_ptr<TrainArgs>& args) {
  auto* cmd = app.add_subcommand(name, help);
  add_sweep_options(cmd, args->sweep, /*with_resume=*/true);
  cmd->add_option("--device", args->device, "auto | cpu | cuda (same as --set device=...)")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  // Data parallel when launched with RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT (lorascope launch,
  // torchrun, a scheduler); ignored otherwise.
  cmd->add_option("--dist-backend", args->dist_backend,
                  "data parallel: gloo | nccl | auto (nccl on CUDA when built with it)")
      ->check(CLI::IsMember({"auto", "gloo", "nccl"}));
  cmd->add_option("--dist-timeout", args->dist_timeout_s,
                  "data parallel: seconds a rendezvous or collective may wait for the other ranks "
                  "(a dead rank ends the job after at most this long)")
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--no-shard-muon", args->no_shard_muon,
                "data parallel: every rank runs Muon's Newton-Schulz on every matrix");
  cmd->add_flag("--no-overlap", args->no_overlap,
                "data parallel: all-reduce gradients after backward instead of during it");
  if (name != "pretrain") {
    cmd->add_option("--model", args->model,
                    "base model: `lorascope pretrain` output or a Hugging Face checkpoint directory "
                    "(config.json + safetensors + tokenizer.json/tokenizer.model); = --set base=DIR");
  }
  return cmd;
}

// Resolves, validates every run before writing, then trains them in order. compare fills plan
// with its learning-rate sweeps; the other commands refuse sweep.lr.
int train_runs(const TrainArgs& a, const std::string& mode, const std::string& command,
               LrSweepPlan* plan = nullptr) {
  SweepSpec spec;
  spec.command = command;
  spec.schema = &train_schema();
  spec.check = check_train_config;
  spec.preset_sets = {"mode=" + mode};
  spec.resumable = true;
  SweepArgs sweep = a.sweep;
  if (!a.device.empty()) sweep.sets.push_back("device=" + a.device);
  if (!a.model.empty()) sweep.sets.push_back("base=" + a.model);
  spec.validate = validate_train_run;
  const std::string config_where = a.sweep.config.empty() ? std::string("defaults") : a.sweep.config;
  spec.expand = [plan, where = config_where, command](const std::vector<RunSpec>& runs, const std::vector<std::string>& sets) {
    if (plan) return expand_lr_sweeps(runs, sets, where, plan);
    for (const auto& r : runs) {
      if (!sweep_learning_rates(r.config, where).empty()) {
        throw ConfigError(where + " (run " + r.name + "): sweep.lr: only `lorascope compare` runs learning-rate "
                          "sweeps, not " + command);
      }
    }
    return runs;
  };
  RendezvousInfo where;
  std::unique_ptr<Communicator> comm;
  DataParallel dp;
  if (!sweep.dry_run && !sweep.keys && rendezvous_from_env(&where)) {
    DistributedOptions options;
    options.backend = a.dist_backend;
    options.timeout = std::chrono::milliseconds(static_cast<int64_t>(a.dist_timeout_s * 1000));
    options.cuda = at::hasCUDA() && a.device != "cpu";
    comm = std::make_unique<Communicator>(where, options);
    dp = {comm.get(), !a.no_shard_muon, !a.no_overlap};
    if (comm->rank() == 0) {
      std::fprintf(stderr, "lorascope: data parallel over %d ranks (%s, rendezvous %s:%d)\n",
                   comm->world_size(), comm->backend().c_str(), where.master_addr.c_str(),
                   where.master_port);
    }
    spec.writer = comm->rank() == 0;
    spec.after_validation = [c = comm.get()] { c->barrier(); };
  }
  spec.run = [&dp](const RunSpec& r, const std::string& dir, bool resume) {
    auto outcome = run_train(r, dir, resume, &dp);
    return RunResult{outcome.status, outcome.summary};
  };
  spec.describe = [](const RunSpec& r, const RunResult& res) {
    const auto& s = res.summary;
    char line[1024];
    std::snprintf(line, sizeof line, "%s: %lld steps, validation %s, test %s, %.1fs",
                  r.name.c_str(), static_cast<long long>(s["steps"].get<int64_t>()),
                  s["validation"].dump().c_str(), s["test"].dump().c_str(),
                  s["wall_seconds"].get<double>());
    return std::string(line);
  };
  if (!comm) return run_sweep(sweep, spec);
  // A rank that fails leaves the process group's threads waiting on its peers: report and exit
  // without unwinding them (the peers' collectives fail in turn, within --dist-timeout).
  try {
    const int code = run_sweep(sweep, spec);
    comm->barrier();  // the ranks finish together
    return code;
  } catch (const std::exception& e) {
    const bool config = dynamic_cast<const ConfigError*>(&e) != nullptr;
    const bool dist = dynamic_cast<const DistributedError*>(&e) != nullptr;
    if (dist) {
      std::fprintf(stderr, "lorascope: %s\n", e.what());
    } else {
      std::fprintf(stderr, "lorascope: rank %d: %s\n", comm->rank(), e.what());
    }
    std::fflush(stderr);
    std::_Exit(config ? 2 : 1);
  }
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
  cmd->footer("Example: lorascope finetune --config configs/lm/compare_spam.json --out runs/ft "
              "--set base=runs/base/brown");
  return [args] { return train_runs(*args, "finetune", "finetune"); };
}

Command add_compare_command(CLI::App& app) {
  auto args = std::make_shared<TrainArgs>();
  auto* cmd = add_common(app, "compare", "run the same fine-tune under several optimizers (same "
                         "seed and data order) and write a report", args);
  cmd->footer("Example: lorascope compare --config configs/lm/compare_spam.json --out runs/compare\n"
              "A run with sweep.lr ([lr, ...] or {from, to, points}, log-spaced) runs once per learning "
              "rate; the report ranks each run by its best point (validation accuracy, else loss).");
  return [args]() -> int {
    LrSweepPlan plan;
    const int code = train_runs(*args, "finetune", "compare", &plan);
    if (args->sweep.dry_run || args->sweep.keys) return code;
    if (const char* rank = std::getenv("RANK"); rank && std::string(rank) != "0") return code;
    if (!plan.empty()) {
      const json sweep = summarize_lr_sweeps(plan, args->sweep.out);
      for (const auto& g : sweep["groups"]) {
        const std::string best = g["best"].is_null() ? std::string("no completed point")
                                                     : g["best"]["run"].get<std::string>() + ", validation " +
                                                           sweep["metric"].get<std::string>() + " " +
                                                           g["best"]["validation"][sweep["metric"].get<std::string>()].dump();
        std::fprintf(stderr, "sweep %s: best %s\n", g["name"].get<std::string>().c_str(), best.c_str());
      }
    }
    const int report = run_python_script("report.py", {args->sweep.out});
    if (report != 0) {
      std::fprintf(stderr, "lorascope: compare: report failed (report.py exited %d)\n", report);
      return code != 0 ? code : 1;
    }
    std::fprintf(stderr, "report: %s/report.md\n", args->sweep.out.c_str());
    return code;
  };
}

}  // namespace lorascope::cli
