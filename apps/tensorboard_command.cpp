// lorascope tensorboard: TensorBoard event files from the metrics.jsonl of finished (or running)
// runs, through the same sink a live run uses (trainer/tensorboard_sink.h).
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "apps/commands.h"
#include "trainer/config.h"
#include "trainer/tensorboard_sink.h"
#include "util/json_file.h"

namespace lorascope::cli {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct TensorBoardArgs {
  std::vector<std::string> runs;
  bool force = false;
};

std::vector<fs::path> own_event_files(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string n = e.path().filename().string();
    if (n.rfind("events.out.tfevents.", 0) == 0 && n.size() > 10 && n.substr(n.size() - 10) == ".lorascope") {
      out.push_back(e.path());
    }
  }
  return out;
}

// Every record of RUN/metrics.jsonl; a torn last line is skipped, a malformed earlier one is bad input.
std::vector<json> read_records(const fs::path& path) {
  if (!fs::exists(path)) throw ConfigError(path.string() + ": not found (a run directory has metrics.jsonl)");
  std::vector<json> out;
  try {
    for (auto& line : read_json_lines(path.string())) out.push_back(std::move(line.value));
  } catch (const JsonFileError& e) {
    throw ConfigError(e.what());
  }
  return out;
}

}  // namespace

Command add_tensorboard_command(CLI::App& app) {
  auto args = std::make_shared<TensorBoardArgs>();
  auto* cmd = app.add_subcommand("tensorboard", "write TensorBoard event files into run directories from their "
                                                "metrics.jsonl (then: tensorboard --logdir OUT)");
  cmd->add_option("runs", args->runs, "run directories")->required()->check(CLI::ExistingDirectory);
  cmd->add_flag("--force", args->force, "replace event files that lorascope wrote before");

  return [args]() -> int {
    // Read and check every run first: bad input leaves every directory as it was.
    std::vector<std::vector<json>> records;
    for (const auto& run : args->runs) {
      const auto existing = own_event_files(run);
      if (!existing.empty() && !args->force) {
        throw ConfigError(existing.front().string() + ": already written (--force replaces lorascope's event files)");
      }
      records.push_back(read_records(fs::path(run) / "metrics.jsonl"));
    }
    for (size_t i = 0; i < args->runs.size(); ++i) {
      const fs::path run = args->runs[i];
      for (const auto& f : own_event_files(run)) fs::remove(f);
      // wall_s counts from the run's start, when config.json was written.
      double start = unix_seconds();
      std::error_code ec;
      const auto written = fs::last_write_time(run / "config.json", ec);
      if (!ec) {
        start = std::chrono::duration<double>((written - fs::file_time_type::clock::now()) +
                                              std::chrono::system_clock::now().time_since_epoch()).count();
      }
      TensorBoardSink sink(run.string(), start);
      for (const auto& r : records[i]) sink.write(r);
      std::printf("%s: %zu records\n", sink.path().c_str(), records[i].size());
    }
    return 0;
  };
}

}  // namespace lorascope::cli
