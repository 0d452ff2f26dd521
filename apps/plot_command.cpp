// lorascope plot: figures from run directories, drawn by matplotlib (scripts/plot_runs.py).
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "apps/commands.h"
#include "trainer/config.h"

namespace lorascope::cli {

namespace fs = std::filesystem;

namespace {
struct PlotArgs {
  std::vector<std::string> dirs;
  std::string out, x = "step";
};

std::string find_script() {
  for (const char* env : {"LORASCOPE_SCRIPTS_DIR"}) {
    if (const char* v = std::getenv(env)) return std::string(v) + "/plot_runs.py";
  }
  return std::string(LORASCOPE_SOURCE_DIR) + "/scripts/plot_runs.py";
}
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
    const std::string script = find_script();
    if (!fs::exists(script)) throw ConfigError(script + ": plotting script not found");
    const std::string python = "/usr/bin/python3";  // Debian's, where python3-matplotlib lives
    if (!fs::exists(python)) {
      throw ConfigError(python + ": not found; install python3-matplotlib (scripts/setup_deps.sh)");
    }
    std::string out = args->out;
    if (out.empty()) out = (args->dirs.size() == 1 ? fs::path(args->dirs[0]) / "figures"
                                                  : fs::path("figures")).string();
    std::vector<std::string> argv_s = {python, script, "--out", out, "--x", args->x};
    argv_s.insert(argv_s.end(), args->dirs.begin(), args->dirs.end());
    std::vector<char*> argv;
    for (auto& s : argv_s) argv.push_back(s.data());
    argv.push_back(nullptr);
    std::fflush(nullptr);
    const pid_t pid = fork();
    if (pid < 0) throw std::runtime_error("plot: fork failed");
    if (pid == 0) {
      execv(python.c_str(), argv.data());
      std::perror("lorascope: plot: exec /usr/bin/python3");
      _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status)) return 1;
    return WEXITSTATUS(status);
  };
}

}  // namespace lorascope::cli
