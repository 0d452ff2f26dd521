// `lorascope rank-accuracy` end to end: every config under configs/rank_accuracy/ resolves, one
// runs through the binary and its figures are drawn; bad input exits 2 and writes nothing.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <sys/wait.h>
#include <unistd.h>

#include "tests/cli_fixtures.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

using lorascope::fixtures::lorascope_cli;

fs::path fresh_dir(const std::string& name) {
  auto dir = fs::temp_directory_path() / ("lorascope_ra_" + std::to_string(::getpid()) + "_" + name);
  fs::remove_all(dir);
  return dir;
}

TEST(RankAccuracyCliTest, ClosedFormConfigRunsAndPlots) {
  auto out = fresh_dir("trace");
  auto r = lorascope_cli("rank-accuracy --config " + std::string(LORASCOPE_CONFIGS_DIR) +
                     "/rank_accuracy/trace_closed_form.json --out " + out.string() +
                     " --set train.t_end=1 --set train.log_every_t=0.1");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(json::parse(std::ifstream(out / "index.json"))["command"], "rank-accuracy");
  for (const char* run : {"trace-seed0", "trace-seed1"}) {
    std::ifstream metrics(out / run / "metrics.jsonl");
    std::string line;
    int lines = 0;
    while (std::getline(metrics, line)) {
      auto rec = json::parse(line);
      for (const char* key : {"step", "t", "loss", "loss_full", "a", "a_closed", "closed_gap",
                              "full_gap", "rel_error", "sv"}) {
        EXPECT_TRUE(rec.contains(key)) << run << " " << key;
      }
      EXPECT_LT(rec["closed_gap"].get<double>(), 1e-8) << line;
      ++lines;
    }
    EXPECT_EQ(lines, 11) << run;
    auto summary = json::parse(std::ifstream(out / run / "summary.json"));
    EXPECT_EQ(summary["status"], "completed");
    EXPECT_TRUE(summary.contains("rel_error_eq33"));
  }
  auto plot = lorascope_cli("plot " + out.string());
  ASSERT_EQ(plot.code, 0) << plot.err;
  for (const char* f : {"ra_trace-seed0.png", "ra_loss.png", "ra_gap.png"}) {
    EXPECT_GT(fs::file_size(out / "figures" / f), 10000u) << f;
  }
}

TEST(RankAccuracyCliTest, EveryShippedConfigResolves) {
  for (const auto& entry : fs::directory_iterator(std::string(LORASCOPE_CONFIGS_DIR) + "/rank_accuracy")) {
    auto r = lorascope_cli("rank-accuracy --dry-run --config " + entry.path().string());
    EXPECT_EQ(r.code, 0) << entry.path() << "\n" << r.err;
  }
}

TEST(RankAccuracyCliTest, BadInputExitsTwoAndWritesNothing) {
  for (const auto& [args, expect] : std::vector<std::pair<std::string, std::string>>{
           {"--set task.m=5", "task.m"},
           {"--set solver.method=rk5", "solver.method"},
           {"--set task.sigma=0", "task.sigma"}}) {
    auto out = fresh_dir("bad");
    auto r = lorascope_cli("rank-accuracy --out " + out.string() + " " + args);
    EXPECT_EQ(r.code, 2) << args << "\n" << r.err;
    EXPECT_NE(r.err.find(expect), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(out));
  }
  EXPECT_EQ(lorascope_cli("rank-accuracy --keys").code, 0);
}

}  // namespace
