// `lorascope analyze` and `lorascope tensorboard` end to end on runs made here: a tiny LLaMA base
// (a pretrain run's model.pt + model_config.json) and PEFT adapters of two "runs" on it; the
// numbers against direct float64 computations on the full matrices; bad input exits 2 with one
// line and writes nothing.
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/grad_mode.h>  // at::NoGradGuard (not in <ATen/ATen.h> from LibTorch 2 on)

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "cli_fixtures.h"
#include "data_fixtures.h"
#include "model_fixtures.h"
#include "models/esd_alpha.h"
#include "models/linear.h"
#include "models/lora.h"
#include "models/peft_adapter.h"
#include "models/safetensors.h"
#include "optim/state_io.h"
#include "trainer/checkpoint.h"
#include "trainer/metrics_writer.h"

namespace lorascope {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

using fixtures::lorascope_cli;

std::shared_ptr<SequenceModel> tiny_base() {
  auto c = fixtures::tiny_config("llama");
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1);
  auto m = make_model(c, "causal_lm", 0, gen);
  m->eval();
  return m;
}

void write_base(const fs::path& dir) {
  auto m = tiny_base();
  fs::create_directories(dir);
  save_tensor_dict(module_state(*m), (dir / "model.pt").string());
  write_json_atomic((dir / "model_config.json").string(), m->config().to_json());
}

// A finetune-like run: config.json naming the base, adapter/ with nonzero B.
void write_run(const fs::path& run, const fs::path& base, int64_t r, uint64_t seed) {
  auto m = tiny_base();
  LoraConfig lora;
  lora.r = r;
  lora.alpha = 2.0 * r;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  attach_lora(*m, lora, gen);
  {
    at::NoGradGuard ng;
    for (auto& a : find_adapters(*m)) a.B.normal_(0, 0.5, gen);
  }
  save_peft_adapter(*m, lora, (run / "adapter").string(), base.string());
  write_json_atomic((run / "config.json").string(), json{{"name", run.filename().string()}, {"base", base.string()}});
}

struct Runs {
  TempDir dir{"analyze"};
  fs::path base = dir.path / "base", a = dir.path / "run_a", b = dir.path / "run_b";
  Runs() {
    write_base(base);
    write_run(a, base, 4, 11);
    write_run(b, base, 4, 12);
  }
};

TEST(AnalyzeCliTest, TwoRunsGiveNumbersThatMatchFullMatrices) {
  Runs runs;
  const fs::path out = runs.dir.path / "out";
  const auto r = lorascope_cli("analyze " + runs.a.string() + " " + runs.b.string() + " --out " + out.string() + " --no-plots");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto doc = json::parse(std::ifstream(out / "analysis.json"));
  ASSERT_EQ(doc["runs"].size(), 2u);
  const auto& layers = doc["runs"][0]["layers"];
  ASSERT_EQ(layers.size(), 4u);  // q_proj, v_proj of 2 layers
  EXPECT_TRUE(fs::exists(out / "layers.csv"));
  EXPECT_TRUE(fs::exists(out / "similarity.csv"));

  // One layer recomputed from the files with full float64 SVDs.
  const auto base = load_tensor_dict((runs.base / "model.pt").string());
  const auto adapter = load_safetensors((runs.a / "adapter" / "adapter_model.safetensors").string());
  for (const auto& layer : layers) {
    const std::string module = layer["module"];
    const auto W = base.at(module + ".weight").to(at::kDouble);
    const auto A = adapter.at("base_model.model." + module + ".lora_A.weight").to(at::kDouble);
    const auto B = adapter.at("base_model.model." + module + ".lora_B.weight").to(at::kDouble);
    const double s = 2.0;  // alpha / r
    EXPECT_DOUBLE_EQ(layer["scaling"].get<double>(), s);
    const auto merged = W + s * at::matmul(B, A);
    const auto dsv = at::linalg_svdvals(s * at::matmul(B, A));
    for (int i = 0; i < 4; ++i) EXPECT_NEAR(layer["delta_sv"][i].get<double>(), dsv[i].item<double>(), 1e-10) << module;
    // Intruders by PEFT's rule on full SVDs (top 10, epsilon = 0.5).
    auto [Uw, Sw, Vw] = at::linalg_svd(W, false);
    auto [Um, Sm, Vm] = at::linalg_svd(merged, false);
    const auto cos = std::get<0>(at::matmul(Um.t(), Uw).abs().max(1));
    int64_t intruders = 0;
    const int64_t k = std::min<int64_t>(10, Sm.size(0));  // v_proj is 8 x 16 here
    ASSERT_EQ(layer["intruder_max_cos"].size(), static_cast<size_t>(k));
    for (int64_t i = 0; i < k; ++i) {
      intruders += cos[i].item<double>() < 0.5;
      EXPECT_NEAR(layer["intruder_max_cos"][i].get<double>(), cos[i].item<double>(), 1e-8) << module;
      EXPECT_NEAR(layer["merged_top_sv"][i].get<double>(), Sm[i].item<double>(), 1e-10) << module;
    }
    EXPECT_EQ(layer["intruders"].get<int64_t>(), intruders) << module;
    // Alignment: mean cos^2 between delta W's left singular vectors and W's top r = 4.
    auto [Ud, Sd, Vd] = at::linalg_svd(s * at::matmul(B, A), false);
    const double align = at::matmul(Uw.narrow(1, 0, 4).t(), Ud.narrow(1, 0, 4)).pow(2).sum().item<double>() / 4;
    EXPECT_NEAR(layer["align_left"].get<double>(), align, 1e-10) << module;
    EXPECT_NEAR(layer["esd_W"]["alpha"].get<double>(), esd_alpha(W).alpha, 1e-12) << module;
    EXPECT_NEAR(layer["esd_merged"]["alpha"].get<double>(), esd_alpha(merged).alpha, 1e-9) << module;
  }
  // phi_A(i, j) between the runs' lora_A right singular vectors.
  const auto adapter_b = load_safetensors((runs.b / "adapter" / "adapter_model.safetensors").string());
  const auto& sim = doc["similarity"]["layers"][0];
  const std::string key = "base_model.model." + sim["module"].get<std::string>() + ".lora_A.weight";
  const auto Va = std::get<2>(at::linalg_svd(adapter.at(key).to(at::kDouble), false)).t();
  const auto Vb = std::get<2>(at::linalg_svd(adapter_b.at(key).to(at::kDouble), false)).t();
  for (int64_t i = 1; i <= 4; ++i) {
    for (int64_t j = 1; j <= 4; ++j) {
      const double phi = at::matmul(Va.narrow(1, 0, i).t(), Vb.narrow(1, 0, j)).pow(2).sum().item<double>() / std::min(i, j);
      EXPECT_NEAR(sim["phi_A"][i - 1][j - 1].get<double>(), phi, 1e-10);
    }
  }
}

TEST(AnalyzeCliTest, MismatchedRunsExitTwoWithOneLineAndWriteNothing) {
  Runs runs;
  const fs::path other_base = runs.dir.path / "other_base";
  write_base(other_base);
  const fs::path c = runs.dir.path / "run_c", d = runs.dir.path / "run_d";
  write_run(c, other_base, 4, 13);
  write_run(d, runs.base, 2, 14);
  const fs::path out = runs.dir.path / "out_bad";
  const auto expect_bad = [&](const std::string& args, const std::string& needle) {
    const auto r = lorascope_cli("analyze " + args + " --out " + out.string() + " --no-plots");
    EXPECT_EQ(r.code, 2) << args << ": " << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_FALSE(fs::exists(out)) << args;
  };
  expect_bad(runs.a.string() + " " + c.string(), "base: \"" + other_base.string() + "\" is not the base of");
  expect_bad(runs.a.string() + " " + d.string(), "adapter_config.json: r: 2, but the adapters of");
  expect_bad(runs.base.string(), "config.json: not found");
  fs::remove_all(runs.b / "adapter");
  expect_bad(runs.a.string() + " " + runs.b.string(), "adapter_config.json: not found");
  std::ofstream(runs.a / "config.json") << R"({"name": "a"})";
  expect_bad(runs.a.string(), "base: expected the base model's directory");
}

TEST(AnalyzeCliTest, FiguresAndHistoryFromMetrics) {
  Runs runs;
  // Monitor records as phase 2 will log them: the history figure appears.
  {
    JsonlWriter w((runs.a / "metrics.jsonl").string());
    for (int step : {0, 10, 20}) {
      w.write(json{{"step", step}, {"loss", 1.0},
                   {"adapters", {{"model.layers.0.self_attn.q_proj", {{"align_left", 0.1 * step}, {"align_right", 0.2},
                                                                     {"intruders", step / 10}, {"intruder_sv", nullptr}}}}}});
    }
  }
  const fs::path out = runs.dir.path / "figs";
  const auto r = lorascope_cli("analyze " + runs.a.string() + " " + runs.b.string() + " --out " + out.string(),
                           "LORASCOPE_PYTHON=/usr/bin/python3");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto figs = json::parse(std::ifstream(out / "figures.json"))["figures"];
  for (const char* f : {"similarity_A.png", "similarity_B.png", "alignment.png", "intruders.png", "esd_alpha.png",
                        "over_training.png"}) {
    EXPECT_NE(std::find(figs.begin(), figs.end(), f), figs.end()) << f;
    EXPECT_GT(fs::file_size(out / f), 1000u) << f;
  }
  const auto doc = json::parse(std::ifstream(out / "analysis.json"));
  const auto& h = doc["runs"][0]["history"];
  EXPECT_EQ(h["steps"], json({0, 10, 20}));
  EXPECT_EQ(h["adapters"]["model.layers.0.self_attn.q_proj"]["intruders"], json({0, 1, 2}));
}

TEST(AnalyzeCliTest, WeightsFileGivesWeightwatchersAlphaPerMatrix) {
  TempDir dir("analyze_weights");
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  const auto W1 = at::randn({40, 30}, gen), W2 = at::randn({12, 50}, gen);
  save_safetensors({{"a.weight", W1}, {"b.weight", W2}, {"bias", at::randn({7}, gen)}},
                   (dir.path / "w.safetensors").string());
  const auto r = lorascope_cli("analyze --weights " + (dir.path / "w.safetensors").string() + " --out " +
                           (dir.path / "o").string());
  ASSERT_EQ(r.code, 0) << r.err;
  const auto esd = json::parse(std::ifstream(dir.path / "o" / "esd.json"));
  ASSERT_EQ(esd["layers"].size(), 2u);
  EXPECT_EQ(esd["layers"][0]["name"], "a.weight");
  EXPECT_DOUBLE_EQ(esd["layers"][0]["alpha"].get<double>(), esd_alpha(W1).alpha);
  EXPECT_DOUBLE_EQ(esd["layers"][1]["alpha"].get<double>(), esd_alpha(W2).alpha);
}

TEST(TensorBoardCliTest, ConvertsMetricsOnceAndRefusesToDuplicate) {
  TempDir dir("tensorboard_cli");
  const fs::path run = dir.path / "run";
  fs::create_directories(run);
  write_json_atomic((run / "config.json").string(), json{{"name", "run"}});
  {
    JsonlWriter w((run / "metrics.jsonl").string());
    w.write(json{{"step", 0}, {"loss", 2.0}, {"wall_s", 0.1}});
    w.write(json{{"step", 5}, {"loss", 1.5}, {"wall_s", 0.2}});
  }
  std::ofstream(run / "metrics.jsonl", std::ios::app) << "{\"step\": 7, \"lo";  // torn last line: skipped
  ASSERT_EQ(lorascope_cli("tensorboard " + run.string()).code, 0);
  const auto count = [&] {
    int n = 0;
    for (const auto& e : fs::directory_iterator(run)) n += e.path().filename().string().find("tfevents") != std::string::npos;
    return n;
  };
  EXPECT_EQ(count(), 1);
  const auto again = lorascope_cli("tensorboard " + run.string());
  EXPECT_EQ(again.code, 2);
  EXPECT_NE(again.err.find("already written (--force replaces"), std::string::npos) << again.err;
  EXPECT_EQ(lorascope_cli("tensorboard --force " + run.string()).code, 0);
  EXPECT_EQ(count(), 1);
  std::ofstream(run / "metrics.jsonl", std::ios::app) << "\n{\"step\": 9}\n";  // a malformed middle line now
  const auto bad = lorascope_cli("tensorboard --force " + run.string());
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.err.find("metrics.jsonl:3: not valid JSON"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace lorascope
