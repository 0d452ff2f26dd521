#include "apps/python_script.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>

#include "trainer/config.h"

namespace lorascope::cli {

int run_python_script(const std::string& script, const std::vector<std::string>& args) {
  const char* dir = std::getenv("LORASCOPE_SCRIPTS_DIR");
  const std::string path = (dir ? std::string(dir) : std::string(LORASCOPE_SOURCE_DIR) + "/scripts") +
                           "/" + script;
  if (!std::filesystem::exists(path)) throw ConfigError(path + ": script not found");
  // Debian's python3 with matplotlib by default; LORASCOPE_PYTHON for machines where the
  // interpreter that has matplotlib lives elsewhere (a virtualenv).
  const char* override_python = std::getenv("LORASCOPE_PYTHON");
  const std::string python = override_python && *override_python ? override_python : "/usr/bin/python3";
  if (!std::filesystem::exists(python)) {
    throw ConfigError(python + ": not found; install python3-matplotlib (scripts/setup_deps.sh)" +
                      " or set LORASCOPE_PYTHON");
  }
  std::vector<std::string> argv_s = {python, path};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& s : argv_s) argv.push_back(s.data());
  argv.push_back(nullptr);
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed while starting " + script);
  if (pid == 0) {
    execv(python.c_str(), argv.data());
    std::perror(("lorascope: exec " + python).c_str());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

}  // namespace lorascope::cli
