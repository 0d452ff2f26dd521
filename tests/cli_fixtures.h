// The lorascope binary run end to end, as a user runs it, for the command-line tests.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

namespace lorascope::fixtures {

struct CliResult {
  int code;         // exit status
  std::string err;  // all it wrote to stderr
};

// `lorascope --threads 1 ARGS` with stdout discarded; env: assignments put before the binary
// ("NAME=value ..."). stderr goes through a file of its own per process and call (ctest may run
// the cases in parallel), removed afterwards.
inline CliResult lorascope_cli(const std::string& args, const std::string& env = "") {
  static int calls = 0;
  const auto err = std::filesystem::temp_directory_path() /
                   ("lorascope_cli_err_" + std::to_string(::getpid()) + "_" + std::to_string(calls++));
  const std::string cmd =
      env + " " + std::string(LORASCOPE_BINARY) + " --threads 1 " + args + " >/dev/null 2>" + err.string();
  const int status = std::system(cmd.c_str());
  std::string text;
  {
    std::ifstream in(err);
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  std::filesystem::remove(err);
  return {WEXITSTATUS(status), text};
}

}  // namespace lorascope::fixtures
