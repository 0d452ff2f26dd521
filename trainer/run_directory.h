// The files of one run's directory, the same for every command: config.json before training,
// metrics.jsonl during it, summary.json after it (written atomically: a killed run never leaves a
// torn summary). Setup that can fail on bad input runs before this, so a rejected run writes
// nothing.
#pragma once

#include <filesystem>
#include <string>
#include <utility>

#include "trainer/config.h"
#include "trainer/metrics_writer.h"

namespace lorascope {

// train(JsonlWriter&) -> an outcome with a `summary` member; returns that outcome. A resumed run
// appends to metrics.jsonl; a null summary (a run halted as if killed) writes no summary.json.
template <typename Train>
auto run_in_directory(const RunSpec& run, const std::string& run_dir, Train&& train, bool append_metrics = false) {
  std::filesystem::create_directories(run_dir);
  write_json_atomic(run_dir + "/config.json", run.config);
  decltype(train(std::declval<JsonlWriter&>())) out;
  {
    JsonlWriter metrics(run_dir + "/metrics.jsonl", append_metrics);
    out = train(metrics);
  }  // metrics.jsonl is flushed and closed before the summary says the run is over
  if (!out.summary.is_null()) write_json_atomic(run_dir + "/summary.json", out.summary);
  return out;
}

}  // namespace lorascope
