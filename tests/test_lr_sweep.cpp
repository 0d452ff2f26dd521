// compare's learning-rate sweeps (trainer/lr_sweep.h): expansion of sweep.lr into runs, the
// errors for bad sweep specs, and the pick of each run's best point.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "tests/train_fixtures.h"
#include "trainer/lr_sweep.h"
#include "util/json_file.h"
#include "trainer/train_schema.h"

namespace lorascope {
namespace {

using nlohmann::json;

std::vector<RunSpec> expand(const json& doc, const std::vector<std::string>& sets = {}, LrSweepPlan* plan = nullptr) {
  std::vector<std::string> all = {"base=/b"};
  all.insert(all.end(), sets.begin(), sets.end());
  const auto runs = resolve_runs_json(doc, "cmp.json", all, train_schema(), check_train_config);
  LrSweepPlan local;
  return expand_lr_sweeps(runs, all, "cmp.json", plan ? plan : &local);
}

std::string error_of(const json& doc, const std::vector<std::string>& sets = {}) {
  try {
    expand(doc, sets);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(LrSweepTest, AListBecomesOneRunPerLearningRate) {
  const json doc = {{"runs", {{{"name", "muon"}, {"optim.name", "muon"}, {"sweep", {{"lr", {0.005, 0.02}}}}},
                              {{"name", "adamw"}, {"optim.name", "adamw"}, {"optim.lr", 1e-3}}}}};
  LrSweepPlan plan;
  const auto runs = expand(doc, {}, &plan);
  ASSERT_EQ(runs.size(), 3u);
  EXPECT_EQ(runs[0].name, "muon-lr0.005");
  EXPECT_EQ(runs[1].name, "muon-lr0.02");
  EXPECT_EQ(runs[2].name, "adamw");  // no sweep: unchanged
  EXPECT_DOUBLE_EQ(runs[1].config["optim"]["lr"].get<double>(), 0.02);
  EXPECT_EQ(runs[1].config["optim"]["name"], "muon");
  EXPECT_EQ(runs[1].config["name"], "muon-lr0.02");
  EXPECT_FALSE(runs[1].config.contains("sweep"));
  EXPECT_DOUBLE_EQ(runs[1].overrides["optim.lr"].get<double>(), 0.02);
  EXPECT_FALSE(runs[1].overrides.contains("sweep.lr"));
  EXPECT_DOUBLE_EQ(runs[2].config["optim"]["lr"].get<double>(), 1e-3);
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0].name, "muon");
  EXPECT_EQ(plan[0].runs, (std::vector<std::string>{"muon-lr0.005", "muon-lr0.02"}));
}

TEST(LrSweepTest, ARangeIsLogSpacedAndRoundedToThreeDigits) {
  const json doc = {{"sweep", {{"lr", {{"from", 1e-4}, {"to", 1e-2}, {"points", 5}}}}}};
  LrSweepPlan plan;
  const auto runs = expand(doc, {}, &plan);
  ASSERT_EQ(runs.size(), 5u);
  for (int i = 0; i < 5; ++i) {
    // 10^(-4 + i/2), rounded to 3 significant digits independently of the implementation.
    const double exact = std::pow(10.0, -4.0 + 0.5 * i);
    const double mantissa = exact / std::pow(10.0, std::floor(std::log10(exact)));
    const double rounded = std::round(mantissa * 100.0) / 100.0 * std::pow(10.0, std::floor(std::log10(exact)));
    EXPECT_NEAR(plan[0].lrs[i], rounded, 1e-15) << i;
    EXPECT_DOUBLE_EQ(runs[i].config["optim"]["lr"].get<double>(), plan[0].lrs[i]);
  }
  EXPECT_EQ(runs[1].name, "run-lr0.000316");
  EXPECT_EQ(runs[4].name, "run-lr0.01");
}

TEST(LrSweepTest, BadSpecsNameTheKey) {
  const std::vector<std::pair<json, std::string>> cases = {
      {{{"sweep", {{"lr", json::array()}}}}, "cmp.json (run run): sweep.lr: expected 1 to 25 learning rates, got 0"},
      {{{"sweep", {{"lr", {0.1, -1}}}}}, "sweep.lr: expected a list of numbers each > 0, got [0.1,-1]"},
      {{{"sweep", {{"lr", {0.1, 0.1}}}}}, "sweep.lr: expected distinct learning rates, got 0.1 twice"},
      {{{"sweep", {{"lr", {{"from", 1e-3}, {"points", 3}}}}}}, "sweep.lr.to: expected with the other two"},
      {{{"sweep", {{"lr", {{"from", 1e-2}, {"to", 1e-3}, {"points", 3}}}}}},
       "sweep.lr.to: expected a number > sweep.lr.from (0.01), got 0.001"},
      {{{"sweep", {{"lr", {{"from", 1e-3}, {"to", 1e-2}, {"points", 26}}}}}},
       "sweep.lr.points: expected an integer in [2, 25], got 26"},
      {{{"sweep", {{"lr", {{"from", 1e-3}, {"to", 1.001e-3}, {"points", 3}}}}}},
       "sweep.lr.points: 3 points between 0.001 and 0.001001 repeat at 3 significant digits"},
      {{{"sweep", {{"lr", {{"from", 0}, {"to", 1e-3}, {"points", 3}}}}}}, "sweep.lr.from: expected a number > 0, got 0"},
      {{{"sweep.lr", {0.1}}, {"sweep.lr.from", 0.1}}, "sweep.lr: given both as a value and as an object (sweep.lr.from)"},
      {{{"runs", {{{"name", "m"}, {"optim.lr", 0.1}, {"sweep.lr", {0.01, 0.02}}}}}},
       "cmp.json (run m): sweep.lr: the run (or the grid) also sets optim.lr to 0.1"},
      {{{"runs", {{{"name", "m"}, {"sweep.lr", {0.01}}}, {{"name", "m-lr0.01"}}}}},
       "sweep.lr: the point m-lr0.01 has the name of another run"},
  };
  for (const auto& [doc, message] : cases) {
    const std::string e = error_of(doc);
    EXPECT_NE(e.find(message), std::string::npos) << doc.dump() << "\n" << e;
  }
  EXPECT_NE(error_of({{"sweep.lr", {0.01, 0.02}}}, {"optim.lr=0.1"}).find("--set optim.lr: run sweeps sweep.lr"),
            std::string::npos);
}

TEST(LrSweepTest, TheShippedSweepConfigExpandsToEightRuns) {
  const auto runs = resolve_runs(std::string(LORASCOPE_CONFIGS_DIR) + "/lm/compare_sweep_spam.json",
                                 {"mode=finetune"}, train_schema(), check_train_config);
  LrSweepPlan plan;
  const auto expanded = expand_lr_sweeps(runs, {"mode=finetune"}, "compare_sweep_spam.json", &plan);
  ASSERT_EQ(expanded.size(), 8u);
  EXPECT_EQ(expanded[0].name, "muon-lr0.005");
  EXPECT_EQ(expanded[7].name, "adamw-lr0.003");
  EXPECT_EQ(plan[1].lrs, (std::vector<double>{1e-4, 0.000311, 0.000965, 0.003}));
}

SweepPoint point(double lr, const std::string& status, json validation) {
  return {lr, "r" + std::to_string(lr), status, std::move(validation)};
}

TEST(LrSweepTest, BestIsHighestAccuracyOrLowestLossOfTheCompletedPoints) {
  const std::vector<SweepPoint> cls = {
      point(0.001, "completed", {{"loss", 0.5}, {"accuracy", 0.80}}),
      point(0.01, "completed", {{"loss", 0.4}, {"accuracy", 0.90}}),
      point(0.1, "diverged", {{"loss", 0.1}, {"accuracy", 0.99}}),  // not completed: never the best
      point(0.03, "completed", {{"loss", 0.3}, {"accuracy", 0.90}}),  // a tie: the smaller lr wins
      point(0.3, "completed", {{"loss", nullptr}, {"accuracy", nullptr}}),
  };
  EXPECT_EQ(sweep_metric(cls), "accuracy");
  EXPECT_EQ(best_point(cls, "accuracy"), 1);
  EXPECT_EQ(best_point(cls, "loss"), 3);
  const std::vector<SweepPoint> lm = {point(0.001, "completed", {{"loss", 2.5}, {"perplexity", 12.2}}),
                                      point(0.01, "completed", {{"loss", 2.1}, {"perplexity", 8.2}}),
                                      point(0.1, "missing", json())};
  EXPECT_EQ(sweep_metric(lm), "loss");
  EXPECT_EQ(best_point(lm, "loss"), 1);
  EXPECT_EQ(best_point({point(0.1, "diverged", json()), point(0.2, "missing", json())}, "loss"), -1);
  EXPECT_EQ(best_point({}, "accuracy"), -1);
}

// issue 19: each optimizer at its best learning rate. A 2-point list and a 2-point range, 4 steps
// each: the summary picks the best completed point by validation accuracy (classification) and
// the report shows it.
TEST(TrainerTest, CompareSweepsLearningRatesAndReportsEachBest) {
  Fixture fx;
  const auto base = fx.pretrain();
  auto doc = fx.finetune_doc(base);
  doc.erase("mode");
  doc.erase("optim");
  doc["train"] = {{"max_steps", 4}, {"batch_size", 8}, {"log_every", 2}};
  doc["runs"] = json::array({{{"name", "muon"}, {"optim.name", "muon"}, {"sweep.lr", {0.005, 0.02}}},
                             {{"name", "adamw"}, {"optim.name", "adamw"}, {"optim.lora_plus_ratio", 4},
                              {"sweep", {{"lr", {{"from", 1e-3}, {"to", 1e-2}, {"points", 2}}}}}}});
  const auto config = fx.dir / "sweep.json";
  std::ofstream(config) << doc.dump();
  const auto out = fx.dir / "sweep";
  const std::string cmd = std::string(LORASCOPE_BINARY) + " --threads 1 compare --config " +
                          config.string() + " --out " + out.string() + " > /dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  const auto sweep = read_json_file((out / "sweep.json").string());
  EXPECT_EQ(sweep["metric"], "accuracy");
  ASSERT_EQ(sweep["groups"].size(), 2u);
  const std::vector<std::vector<std::string>> expected = {{"muon-lr0.005", "muon-lr0.02"},
                                                          {"adamw-lr0.001", "adamw-lr0.01"}};
  for (size_t g = 0; g < 2; ++g) {
    const auto& group = sweep["groups"][g];
    double best = -1;
    std::string best_run;
    for (size_t i = 0; i < 2; ++i) {
      const auto& p = group["points"][i];
      EXPECT_EQ(p["run"], expected[g][i]);
      // The value the run used is the one in its resolved config.
      const auto cfg = read_json_file((out / expected[g][i] / "config.json").string());
      EXPECT_DOUBLE_EQ(cfg["optim"]["lr"].get<double>(), p["lr"].get<double>());
      const auto summary = read_json_file((out / expected[g][i] / "summary.json").string());
      ASSERT_EQ(summary["status"], "completed");
      const double acc = summary["validation"]["accuracy"];
      if (acc > best) best = acc, best_run = expected[g][i];
    }
    EXPECT_EQ(group["best"]["run"], best_run);
  }
  for (const char* f : {"report.md", "lr_sweep.png", "curves.png", "erank.png"}) {
    EXPECT_TRUE(fs::exists(out / f)) << f;
  }
  std::ifstream md(out / "report.md");
  std::string text((std::istreambuf_iterator<char>(md)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("## Best of each learning-rate sweep"), std::string::npos);
  EXPECT_NE(text.find("by validation accuracy"), std::string::npos);
  // Runs are labelled with the variant that ran, not only the optimizer's name.
  EXPECT_NE(text.find("| adamw + LoRA+ 4 lr=0.001 |"), std::string::npos);
  // The spectral figures are those of each optimizer's best point only.
  for (const auto& group : sweep["groups"]) {
    for (const auto& p : group["points"]) {
      EXPECT_EQ(fs::exists(out / ("sv_" + p["run"].get<std::string>() + ".png")), p["run"] == group["best"]["run"])
          << p["run"];
    }
  }
}

}  // namespace
}  // namespace lorascope
