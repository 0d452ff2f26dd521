// The lorascope binary end to end: outputs of a good run, and exit code 2 with a one-line
// message and nothing written for bad input.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <unistd.h>

#include "tests/cli_fixtures.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

using lorascope::fixtures::lorascope_cli;

fs::path fresh_dir(const std::string& name) {
  auto dir = fs::temp_directory_path() / ("lorascope_cli_" + name);
  fs::remove_all(dir);
  return dir;
}

TEST(CliTest, MfRunWritesConfigMetricsAndSummary) {
  auto out = fresh_dir("ok");
  auto r = lorascope_cli("mf --out " + out.string() + " --set train.steps=50 --set train.log_every=10 --set name=t");
  ASSERT_EQ(r.code, 0) << r.err;
  auto cfg = json::parse(std::ifstream(out / "t" / "config.json"));
  EXPECT_EQ(cfg["train"]["steps"], 50);
  std::ifstream metrics(out / "t" / "metrics.jsonl");
  std::string line;
  int lines = 0;
  while (std::getline(metrics, line)) {
    auto rec = json::parse(line);
    for (const char* key : {"step", "loss", "sv", "erank", "d", "off_diag", "x_zperp", "factors"}) {
      EXPECT_TRUE(rec.contains(key)) << key;
    }
    EXPECT_EQ(rec["step"], lines * 10);
    ++lines;
  }
  EXPECT_EQ(lines, 6);
  auto summary = json::parse(std::ifstream(out / "t" / "summary.json"));
  EXPECT_EQ(summary["status"], "completed");
  auto index = json::parse(std::ifstream(out / "index.json"));
  EXPECT_EQ(index["runs"][0]["dir"], "t");
  // A second run into the same place refuses and leaves the first intact.
  auto again = lorascope_cli("mf --out " + out.string() + " --set train.steps=5 --set name=t");
  EXPECT_EQ(again.code, 2);
  EXPECT_NE(again.err.find("already exists"), std::string::npos) << again.err;
  EXPECT_EQ(json::parse(std::ifstream(out / "t" / "config.json"))["train"]["steps"], 50);
}

TEST(CliTest, BadInputExitsTwoWithOneLineAndWritesNothing) {
  const fs::path bad_json = fs::temp_directory_path() / "lorascope_cli_bad.json";
  std::ofstream(bad_json) << "{\"optim\": {\"lr\": 0.1,}}";
  const fs::path bad_target = fs::temp_directory_path() / "lorascope_cli_target.json";
  std::ofstream(bad_target) << "{\"U\": [[1, 0]], \"sigma\": [1], \"V\": [[1]]}";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"--set optim.lr=-1", "optim.lr: expected a number > 0, got -1"},
      {"--set task.rank=99", "task.rank"},
      {"--set bogus=1", "bogus: unknown key"},
      {"--set train.steps=0", "train.steps"},
      {"--config /nonexistent.json", "/nonexistent.json"},
      {"--config " + bad_json.string(), "not valid JSON"},
      {"--set task.target_file=/nonexistent/t.json", "/nonexistent/t.json: cannot open file"},
      {"--set task.target_file=" + bad_target.string(), "U: expected a 60 x 1 matrix"},
      // issue 15 item 10: a --set that the grid or a run also sets would mislabel every run.
      {"--config " + std::string(LORASCOPE_CONFIGS_DIR) + "/mf/fig9_rank.json --set task.rank=4",
       "--set task.rank=4: task.rank is also set by " + std::string(LORASCOPE_CONFIGS_DIR) +
           "/mf/fig9_rank.json's grid"},
      {"--config " + std::string(LORASCOPE_CONFIGS_DIR) + "/mf/demo.json --set optim.name=gd",
       "optim.name is also set by " + std::string(LORASCOPE_CONFIGS_DIR) + "/mf/demo.json: runs[0]"},
  };
  for (const auto& [args, expect] : cases) {
    auto out = fresh_dir("bad");
    auto r = lorascope_cli("mf --out " + out.string() + " " + args);
    EXPECT_EQ(r.code, 2) << args << "\n" << r.err;
    EXPECT_NE(r.err.find(expect), std::string::npos) << args << "\n" << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_FALSE(fs::exists(out)) << args;
  }
}

TEST(CliTest, DivergingRunStopsWithStepAndExitCodeThree) {
  auto out = fresh_dir("nan");
  auto r = lorascope_cli("mf --out " + out.string() + " --set optim.name=gd --set optim.lr=5 --set name=x");
  EXPECT_EQ(r.code, 3);
  EXPECT_NE(r.err.find("at step"), std::string::npos) << r.err;
  auto summary = json::parse(std::ifstream(out / "x" / "summary.json"));
  EXPECT_EQ(summary["status"], "diverged");
}

TEST(CliTest, HelpWorksForEveryCommand) {
  for (const char* cmd : {"--help", "mf --help", "plot --help", "mf --keys"}) {
    EXPECT_EQ(lorascope_cli(cmd).code, 0) << cmd;
  }
  EXPECT_EQ(lorascope_cli("nosuchcommand").code, 2);
}

}  // namespace

namespace {

TEST(CliTest, CustomTargetAndInitialFactorsAreUsedExactly) {
  // Y = 2 e1 f1^T on a 3 x 4 problem, A(0) = 0, B(0) = [0.5 0 0 0]: after one GD step of lr
  // 0.1, A = 0.1 * Y B^T = [0.1, 0, 0]^T, so sigma(AB) = 0.05, by hand.
  const fs::path dir = fs::temp_directory_path() / "lorascope_cli_custom";
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::ofstream(dir / "target.json")
      << R"({"U": [[1], [0], [0]], "sigma": [2], "V": [[1], [0], [0], [0]]})";
  std::ofstream(dir / "init.json") << R"({"factors": [[[0], [0], [0]], [[0.5, 0, 0, 0]]]})";
  auto r = lorascope_cli("mf --out " + (dir / "out").string() +
                     " --set task.m=3 --set task.n=4 --set task.rank=1 --set task.target_sv=[2]"
                     " --set task.target_file=" + (dir / "target.json").string() +
                     " --set task.init_file=" + (dir / "init.json").string() +
                     " --set optim.name=gd --set optim.lr=0.1 --set train.steps=1 --set train.log_every=1 --set name=c");
  ASSERT_EQ(r.code, 0) << r.err;
  std::ifstream metrics(dir / "out" / "c" / "metrics.jsonl");
  std::string first, second;
  std::getline(metrics, first);
  std::getline(metrics, second);
  EXPECT_NEAR(json::parse(first)["loss"].get<double>(), 2.0, 1e-15);  // 1/2 * 2^2
  EXPECT_NEAR(json::parse(second)["sv"][0].get<double>(), 0.05, 1e-15);
}

// Every transformer config resolves against the schema (keys, types, ranges, optimizer rules):
// the command its _usage names, with --dry-run, which needs neither data nor model.
TEST(CliTest, LmConfigsResolve) {
  int n = 0;
  for (const auto& entry : fs::directory_iterator(std::string(LORASCOPE_CONFIGS_DIR) + "/lm")) {
    if (entry.path().extension() != ".json") continue;
    std::ifstream in(entry.path());
    const auto usage = json::parse(in).at("_usage").get<std::string>();
    std::string command;
    for (const char* c : {"pretrain", "finetune", "compare"}) {
      if (usage.find(std::string("lorascope ") + c + " ") != std::string::npos) command = c;
    }
    ASSERT_FALSE(command.empty()) << entry.path() << ": _usage names no train command: " << usage;
    const auto r = lorascope_cli(command + " --config " + entry.path().string() + " --dry-run");
    EXPECT_EQ(r.code, 0) << entry.path() << ": " << r.err;
    ++n;
  }
  EXPECT_GE(n, 7);
}

TEST(CliTest, PlotWritesFiguresForASweep) {
  auto out = fresh_dir("plot");
  ASSERT_EQ(lorascope_cli("mf --out " + out.string() + " --config " + LORASCOPE_CONFIGS_DIR +
                      "/mf/demo.json --set train.steps=300").code, 0);
  auto r = lorascope_cli("plot " + out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* f : {"compare_sv.png", "compare_root_sv.png", "compare_loss.png",
                        "compare_alignment.png", "sv_specgd.png", "sv_gd.png"}) {
    EXPECT_GT(fs::file_size(out / "figures" / f), 10000u) << f;
  }
  EXPECT_EQ(lorascope_cli("plot /nonexistent_dir").code, 2);
  // LORASCOPE_PYTHON picks the interpreter; a missing one is an error that names it.
  EXPECT_EQ(lorascope_cli("plot " + out.string(), "LORASCOPE_PYTHON=/usr/bin/python3").code, 0);
  auto bad = lorascope_cli("plot " + out.string(), "LORASCOPE_PYTHON=/nonexistent/python3");
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.err.find("/nonexistent/python3: not found"), std::string::npos) << bad.err;
}

}  // namespace
