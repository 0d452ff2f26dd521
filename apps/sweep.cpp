#include "apps/sweep.h"

#include <cstdio>
#include <filesystem>
#include <stdexcept>

#include "trainer/metrics_writer.h"

namespace lorascope::cli {

namespace fs = std::filesystem;
using nlohmann::json;

void add_sweep_options(CLI::App* cmd, SweepArgs& args, bool with_resume) {
  cmd->add_option("--config", args.config, "JSON config; may describe several runs (runs, grid)");
  cmd->add_option("--out", args.out, "output directory: one subdirectory per run");
  cmd->add_option("--set", args.sets, "override a key, e.g. --set optim.lr=0.02 (repeatable)");
  cmd->add_flag("--overwrite", args.overwrite, "replace existing run directories");
  if (with_resume) {
    cmd->add_flag("--resume", args.resume, "continue each run from its newest checkpoint");
  }
  cmd->add_flag("--dry-run", args.dry_run, "print the resolved runs and exit");
  cmd->add_flag("--keys", args.keys, "list every config key with its default and exit");
}

int run_sweep(const SweepArgs& a, const SweepSpec& spec) {
  if (a.keys) {
    std::printf("%s", spec.schema->describe().c_str());
    return 0;
  }
  auto sets = spec.preset_sets;
  sets.insert(sets.end(), a.sets.begin(), a.sets.end());
  auto runs = resolve_runs(a.config, sets, *spec.schema, spec.check);
  if (spec.expand) runs = spec.expand(runs, sets);
  if (a.dry_run) {
    for (const auto& r : runs) std::printf("%s\n%s\n", r.name.c_str(), r.config.dump(2).c_str());
    return 0;
  }
  if (a.out.empty()) throw ConfigError(spec.command + ": --out: expected an output directory");
  // Everything that can fail on input is checked before the first byte is written.
  for (const auto& r : runs) {
    if (spec.validate) {
      try {
        spec.validate(r);
      } catch (const ConfigError&) {
        throw;
      } catch (const std::runtime_error& e) {
        throw ConfigError(e.what());
      }
    }
    const fs::path dir = fs::path(a.out) / r.name;
    if (fs::exists(dir) && !a.overwrite && !a.resume) {
      throw ConfigError(dir.string() + ": already exists; pass --overwrite to replace it" +
                        (spec.resumable ? " or --resume" : ""));
    }
  }
  if (spec.after_validation) spec.after_validation();
  // A folder made here and left empty by a failing first run is removed again (nothing written).
  const bool made_out = spec.writer && !fs::exists(a.out);
  if (spec.writer) fs::create_directories(a.out);
  json index = {{"command", spec.command}, {"config", a.config}, {"sets", a.sets},
                {"runs", json::array()}};
  int code = 0;
  for (const auto& r : runs) {
    const fs::path dir = fs::path(a.out) / r.name;
    fs::path aside;
    if (spec.writer && fs::exists(dir) && a.overwrite && !a.resume) {
      aside = dir.string() + ".replaced";
      fs::remove_all(aside);
      fs::rename(dir, aside);
    }
    RunResult result;
    try {
      result = spec.run(r, dir.string(), a.resume);
    } catch (...) {
      if (!aside.empty() && !fs::exists(dir)) fs::rename(aside, dir);
      std::error_code ec;
      if (made_out && fs::is_empty(a.out, ec)) fs::remove(a.out, ec);
      throw;
    }
    if (!aside.empty()) fs::remove_all(aside);
    if (!spec.writer) {
      if (result.status != "completed") code = 3;
      continue;
    }
    index["runs"].push_back({{"name", r.name}, {"dir", r.name}, {"overrides", r.overrides},
                             {"status", result.status}});
    write_json_atomic((fs::path(a.out) / "index.json").string(), index);
    if (result.status == "halted") {
      std::fprintf(stderr, "lorascope: run %s: halted at train.halt_at_step (resume with --resume)\n",
                   r.name.c_str());
      code = 3;
    } else if (result.status != "completed") {
      std::fprintf(stderr, "lorascope: run %s: %s; stopped this run (metrics up to it kept)\n",
                   r.name.c_str(), result.summary.value("message", std::string("diverged")).c_str());
      code = 3;
    } else if (spec.describe) {
      std::fprintf(stderr, "%s\n", spec.describe(r, result).c_str());
    }
  }
  return code;
}

}  // namespace lorascope::cli
