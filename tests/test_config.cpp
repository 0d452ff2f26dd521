// Config resolution: precedence, runs x grid expansion, and one clear error per bad input.
#include <gtest/gtest.h>

#include "trainer/mf_schema.h"

namespace lorascope {
namespace {

using nlohmann::json;

std::vector<RunSpec> resolve(const json& doc, const std::vector<std::string>& sets = {}) {
  return resolve_runs_json(doc, "cfg.json", sets, mf_schema(), check_mf_config);
}

TEST(ConfigTest, DefaultsFileRunsGridAndSetApplyInOrder) {
  json doc = {{"optim", {{"lr", 0.02}}},
              {"runs", {{{"name", "a"}, {"optim.name", "gd"}}, {{"name", "b"}}}},
              {"grid", {{"seed", {0, 1}}}}};
  auto runs = resolve(doc, {"train.steps=7"});
  ASSERT_EQ(runs.size(), 4u);
  EXPECT_EQ(runs[0].name, "a-seed0");
  EXPECT_EQ(runs[3].name, "b-seed1");
  EXPECT_EQ(runs[0].config["optim"]["name"], "gd");
  EXPECT_EQ(runs[2].config["optim"]["name"], "muon");
  EXPECT_EQ(runs[1].config["seed"], 1);
  EXPECT_DOUBLE_EQ(runs[3].config["optim"]["lr"].get<double>(), 0.02);
  EXPECT_EQ(runs[3].config["train"]["steps"], 7);
  EXPECT_EQ(runs[3].config["task"]["m"], 60);  // schema default
  EXPECT_EQ(runs[0].overrides["optim.name"], "gd");
  // Dotted keys and nested objects are the same thing.
  EXPECT_EQ(resolve({{"optim.lr", 0.5}})[0].config, resolve({{"optim", {{"lr", 0.5}}}})[0].config);
}

TEST(ConfigTest, NotesAreIgnoredAndOverridesParseJsonOrBareStrings) {
  auto runs = resolve({{"_usage", "lorascope mf ..."}, {"_comment", 3}},
                      {"optim.name=adamw", "task.target_sv=[3,2]", "optim.nesterov=false"});
  EXPECT_EQ(runs[0].config["optim"]["name"], "adamw");
  EXPECT_EQ(runs[0].config["task"]["target_sv"], json::array({3, 2}));
}

struct BadCase {
  std::string doc;  // JSON text
  std::vector<std::string> sets;
  std::string must_contain;
};

TEST(ConfigTest, EveryBadInputNamesTheKeyAndWhatWasExpected) {
  const std::vector<BadCase> cases = {
      {R"({"optim": {"lrr": 0.1}})", {}, "optim.lrr: unknown key (did you mean optim.lr?)"},
      {R"({"lr": 0.1})", {}, "lr: unknown key (did you mean optim.lr?)"},
      {R"({"optim": {"lr": -1}})", {}, "optim.lr: expected a number > 0, got -1"},
      {R"({"optim": {"lr": "fast"}})", {}, "optim.lr: expected a number > 0, got \"fast\""},
      {"{}", {"optim.lr=nan"}, "optim.lr: expected a number > 0"},
      {R"({"task": {"m": 0}})", {}, "task.m: expected an integer >= 1, got 0"},
      {R"({"task": {"m": 2.5}})", {}, "task.m: expected an integer >= 1, got 2.5"},
      {R"({"train": {"steps": -5}})", {}, "train.steps: expected an integer >= 1"},
      {R"({"task": {"rank": 71}})", {}, "task.rank: expected an integer <= min(task.m, task.n) = 60, got 71"},
      {R"({"task": {"target_sv": [1, 2]}})", {}, "task.target_sv: expected values in descending order"},
      {R"({"task": {"target_sv": [1, -2]}})", {}, "task.target_sv: expected a list of numbers each >= 0"},
      {R"({"optim": {"name": "lion"}})", {}, "optim.name: expected one of muon, specgd, normuon, sgd, gd, adamw, lora_fa, hybrid"},
      {R"({"optim": {"name": "specgd", "momentum": 0.9}})", {}, "optim.momentum: specgd has no momentum"},
      {R"({"optim": {"momentum": 1.5}})", {}, "optim.momentum: expected a number in [0, 0.9999], got 1.5"},
      {R"({"optim": {"nesterov": 1}})", {}, "optim.nesterov: expected true or false, got 1"},
      {R"({"runs": []})", {}, "runs: expected a non-empty list"},
      {R"({"runs": [{"name": "x"}, {"name": "x"}]})", {}, "\"x\" is used by two runs"},
      {R"({"name": "../escape"})", {}, "name: expected letters, digits"},
      {R"({"grid": {"seed": 3}})", {}, "grid.seed: expected a non-empty list"},
      {R"({"grid": {"optim.lr": [0.1, -1]}})", {}, "optim.lr: expected a number > 0, got -1"},
      {"{}", {"optim.lr"}, "--set optim.lr: expected KEY=VALUE"},
      {"{}", {"optim.lrate=3"}, "optim.lrate: unknown key (did you mean optim.lr?)"},
      // Found by tests/fuzz/fuzz_config: invalid UTF-8 made the message's dump() throw.
      {"{}", {"optim.name=\x82\xb3"}, "--set \"optim.name=\xEF\xBF\xBD\xEF\xBF\xBD\": expected UTF-8 text"},
      {R"({"device": "tpu"})", {}, "device: expected one of cpu, cuda, auto"},
      {R"({"schedule": {"kind": "linear"}})", {}, "schedule.kind: expected one of constant, cosine"},
      {R"({"task": {"depth": 1}})", {}, "task.depth: expected an integer in [2, 16], got 1"},
      {R"({"task": {"gamma": 0}})", {}, "task.gamma: expected a number > 0, got 0"},
      {R"({"task": {"init": "spectral"}})", {}, "task.init: expected one of a_zero, b_zero"},
      {R"({"optim": {"ns_steps": 0}})", {}, "optim.ns_steps: expected an integer in [1, 100], got 0"},
      {R"({"optim": {"name": "sgd", "nesterov": true}})", {}, "optim.nesterov: expected optim.momentum > 0"},
      {R"({"optim": {"beta": -1e-8}})", {}, "optim.beta: expected a number >= 0"},
      {"[1, 2]", {}, "expected a JSON object at the top level"},
      {"{}", {"train.steps=1e17"}, "train.steps: expected an integer <= 1e12, got 1e+17"},
      // issue 15 item 10: the runs would keep the grid's (or the run's) names with --set's value.
      {R"({"grid": {"task.rank": [1, 2]}})", {"task.rank=4"}, "--set task.rank=4: task.rank is also set by cfg.json's grid"},
      {R"({"grid": {"task": {"rank": [1, 2]}}})", {"task.rank=4"}, "task.rank is also set by cfg.json's grid"},
      {R"({"runs": [{"name": "a"}, {"name": "b", "optim": {"name": "gd"}}]})", {"optim.name=sgd"},
       "--set optim.name=\"sgd\": optim.name is also set by cfg.json: runs[1]"},
  };
  for (const auto& c : cases) {
    try {
      resolve(json::parse(c.doc), c.sets);
      ADD_FAILURE() << "accepted: " << c.doc << " " << json(c.sets).dump();
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(c.must_contain), std::string::npos)
          << "message: " << e.what() << "\nexpected to contain: " << c.must_contain;
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << "not one line";
    }
  }
}

TEST(ConfigTest, EveryShippedConfigResolves) {
  for (const char* name : {"fig2_specgd_vs_gd.json", "fig7_momentum_exact.json",
                           "fig8_momentum_newton_schulz.json", "fig9_rank.json",
                           "fig10_11_depth.json", "demo.json"}) {
    const std::string path = std::string(LORASCOPE_CONFIGS_DIR) + "/mf/" + name;
    EXPECT_NO_THROW(resolve_runs(path, {}, mf_schema(), check_mf_config)) << path;
  }
}

}  // namespace
}  // namespace lorascope
