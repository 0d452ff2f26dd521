// lorascope plot: figures from run directories, drawn by matplotlib (scripts/plot_runs.py).
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "apps/commands.h"
#include "apps/python_script.h"
#include "trainer/config.h"

namespace lorascope::cli {

namespace fs = std::filesystem;

namespace {
struct PlotArgs {
  std::vector<std::string> dirs;
  std::string out, x = "step";
};

}  // namespace

Command add_plot_command(CLI::App& app) {
  auto args = std::make_shared<PlotArgs>();
  auto* cmd = app.add_subcommand("plot", "draw PNG figures (singular values, their roots, loss, "
                                         "alignment) from run or sweep directories");
  cmd->add_option("dirs", args->dirs, "run directories or sweep directories (with index.json)")
      ->required()
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--out", args->out, "figure directory (default: DIR/figures for one DIR)");
  cmd->add_option("--x", args->x, "x axis: step or t (flow time = sum of learning rates)")
      ->check(CLI::IsMember({"step", "t"}));

  return [args]() -> int {
    std::string out = args->out;
    if (out.empty()) out = (args->dirs.size() == 1 ? fs::path(args->dirs[0]) / "figures"
                                                  : fs::path("figures")).string();
    std::vector<std::string> script_args = {"--out", out, "--x", args->x};
    script_args.insert(script_args.end(), args->dirs.begin(), args->dirs.end());
    return run_python_script("plot_runs.py", script_args);
  };
}

}  // namespace lorascope::cli
