// The run-a-sweep skeleton every experiment command shares: resolve runs x grid, validate all
// of them before writing anything, then run them in order, keeping OUT/index.json current.
//
//   --overwrite moves an old run aside and deletes it only once the new one has started;
//   --resume (commands that support it) continues runs in place.
// Exit code: 0 all completed, 3 some run diverged or halted (the others still ran).
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <functional>
#include <string>
#include <vector>

#include "trainer/config.h"

namespace lorascope::cli {

struct SweepArgs {
  std::string config, out;
  std::vector<std::string> sets;
  bool overwrite = false, resume = false, dry_run = false, keys = false;
};

// --config --out --set --overwrite --dry-run --keys, and --resume when with_resume.
void add_sweep_options(CLI::App* cmd, SweepArgs& args, bool with_resume);

struct RunResult {
  std::string status;  // "completed" | "diverged" | "halted"
  nlohmann::json summary;
};

struct SweepSpec {
  std::string command;  // names the sweep in index.json and messages
  const ConfigSchema* schema = nullptr;
  RunCheck check;                         // cross-key checks (ConfigError)
  std::vector<std::string> preset_sets;   // applied before the user's --set (e.g. mode=...)
  bool resumable = false;                 // runs can continue from checkpoints
  // Input checks that need files (targets, base models); runtime_error becomes exit code 2.
  std::function<void(const RunSpec&)> validate;
  // Turns the resolved runs into the runs to train (compare's learning-rate sweeps), given the
  // command line's --set; ConfigError for bad input.
  std::function<std::vector<RunSpec>(const std::vector<RunSpec>&, const std::vector<std::string>& sets)> expand;
  std::function<RunResult(const RunSpec&, const std::string& run_dir, bool resume)> run;
  // One stderr line for a completed run.
  std::function<std::string(const RunSpec&, const RunResult&)> describe;
  // Data-parallel ranks: only the writer (rank 0) touches OUT (index.json, --overwrite moves)
  // and reports; after_validation (a barrier) keeps any rank from finding a run directory that
  // rank 0 has just created and calling it "already exists".
  bool writer = true;
  std::function<void()> after_validation;
};

int run_sweep(const SweepArgs& args, const SweepSpec& spec);

}  // namespace lorascope::cli
