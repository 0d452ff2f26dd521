// PEFT adapter export / import: PEFT's file layout and key names, exact round trips (LLaMA
// causal LM; RoBERTa and BERT classification with the head in modules_to_save), and the
// settings lorascope cannot honour rejected by name.
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/grad_mode.h>  // at::NoGradGuard (not in <ATen/ATen.h> from LibTorch 2 on)

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include "error_of.h"
#include "data_fixtures.h"
#include "model_fixtures.h"
#include "models/linear.h"
#include "models/lora.h"
#include "models/peft_adapter.h"
#include "models/safetensors.h"

namespace lorascope {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::shared_ptr<SequenceModel> base(const TransformerConfig& c, const std::string& head, int64_t labels) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1);  // the same base every call
  auto m = make_model(c, head, labels, gen);
  m->eval();
  return m;
}

// Adapters with nonzero B (PEFT's init has B = 0, which would make any import look right).
void randomise_adapters(SequenceModel& m, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  at::NoGradGuard ng;
  for (auto& a : find_adapters(m)) a.B.normal_(0, 0.1, gen);
}

at::Tensor ids() {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(8);
  return at::randint(2, 50, {2, 7}, gen, at::kLong);
}

TEST(PeftAdapterTest, LlamaExportHasPeftKeysShapesAndConfig) {
  auto c = fixtures::tiny_config("llama");
  auto m = base(c, "causal_lm", 0);
  LoraConfig lora;
  lora.r = 4;
  lora.alpha = 8;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(2);
  attach_lora(*m, lora, gen);
  randomise_adapters(*m, 3);
  TempDir dir("peft_llama");
  save_peft_adapter(*m, lora, (dir.path / "adapter").string(), "meta-llama/Llama-3.2-1B");

  const auto cfg = json::parse(std::ifstream(dir.path / "adapter" / "adapter_config.json"));
  EXPECT_EQ(cfg["peft_type"], "LORA");
  EXPECT_EQ(cfg["task_type"], "CAUSAL_LM");
  EXPECT_EQ(cfg["r"], 4);
  EXPECT_EQ(cfg["lora_alpha"], 8.0);
  EXPECT_EQ(cfg["target_modules"], json::array({"q_proj", "v_proj"}));
  EXPECT_EQ(cfg["bias"], "none");
  EXPECT_EQ(cfg["use_rslora"], false);
  EXPECT_EQ(cfg["base_model_name_or_path"], "meta-llama/Llama-3.2-1B");
  EXPECT_TRUE(cfg["modules_to_save"].is_null());

  const SafetensorsFile f((dir.path / "adapter" / "adapter_model.safetensors").string());
  EXPECT_EQ(f.names().size(), 2u * 2 * 2);  // 2 layers x {q, v} x {A, B}
  const auto A = f.tensor("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight");
  const auto B = f.tensor("base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight");
  EXPECT_EQ(A.sizes(), at::IntArrayRef({4, 16})) << "A: r x in";
  EXPECT_EQ(B.sizes(), at::IntArrayRef({8, 4})) << "B: out x r (2 KV heads x head_dim 4)";
  auto layers = linear_layers_by_name(*m);
  EXPECT_TRUE(at::equal(A, layers.at("model.layers.0.self_attn.q_proj")->lora_A->weight));
  EXPECT_TRUE(at::equal(B, layers.at("model.layers.1.self_attn.v_proj")->lora_B->weight));
}

TEST(PeftAdapterTest, RoundTripReproducesTheModelExactly) {
  for (const std::string arch : {"llama", "roberta", "bert"}) {
    auto c = fixtures::tiny_config(arch == "bert" ? "roberta" : arch);
    if (arch == "bert") c.positions = "absolute";
    const std::string head = arch == "llama" ? "causal_lm" : "classification";
    auto trained = base(c, head, 3);
    LoraConfig lora;
    lora.r = 2;
    lora.alpha = 5;
    lora.rslora = arch == "roberta";
    lora.targets = arch == "llama" ? std::vector<std::string>{"q_proj", "v_proj", "down_proj"}
                                   : std::vector<std::string>{"query", "value"};
    if (head == "classification") lora.modules_to_save = {"classifier"};
    auto gen = at::make_generator<at::CPUGeneratorImpl>(2);
    attach_lora(*trained, lora, gen);
    randomise_adapters(*trained, 4);
    {  // a trained head differs from the fresh one of base()
      at::NoGradGuard ng;
      for (auto& p : trained->named_parameters()) {
        if (p.key().rfind("classifier.", 0) == 0) p.value().add_(0.3);
      }
    }
    TempDir dir("peft_rt_" + arch);
    save_peft_adapter(*trained, lora, dir.path.string());
    const SafetensorsFile f((dir.path / "adapter_model.safetensors").string());
    if (arch == "roberta") {
      EXPECT_TRUE(f.contains("base_model.model.roberta.encoder.layer.1.attention.self.value.lora_B.weight"));
      EXPECT_TRUE(f.contains("base_model.model.classifier.out_proj.weight"));
    }
    if (arch == "bert") {
      EXPECT_TRUE(f.contains("base_model.model.bert.encoder.layer.0.attention.self.query.lora_A.weight"));
      EXPECT_TRUE(f.contains("base_model.model.bert.pooler.dense.weight"));
      EXPECT_TRUE(f.contains("base_model.model.classifier.weight"));
      const auto cfg = json::parse(std::ifstream(dir.path / "adapter_config.json"));
      EXPECT_EQ(cfg["modules_to_save"], json::array({"pooler", "classifier"}));
      EXPECT_EQ(cfg["task_type"], "SEQ_CLS");
    }

    auto loaded = base(c, head, 3);
    const auto got = load_peft_adapter(*loaded, dir.path.string());
    EXPECT_EQ(got.r, 2);
    EXPECT_EQ(got.alpha, 5.0);
    EXPECT_EQ(got.rslora, lora.rslora);
    for (const auto& p : trained->named_parameters()) {
      EXPECT_TRUE(at::equal(loaded->named_parameters()[p.key()], p.value())) << arch << " " << p.key();
      EXPECT_EQ(loaded->named_parameters()[p.key()].requires_grad(), p.value().requires_grad()) << arch << " " << p.key();
    }
    const auto a = find_adapters(*trained), b = find_adapters(*loaded);
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(a[i].scaling, b[i].scaling) << a[i].name;
      EXPECT_EQ(a[i].scaling, lora.rslora ? 5 / std::sqrt(2.0) : 2.5);
    }
    trained->eval();
    loaded->eval();
    at::NoGradGuard ng;
    EXPECT_TRUE(at::equal(loaded->forward(ids(), {}), trained->forward(ids(), {}))) << arch;
    // ... and the adapters matter: without them the logits differ.
    EXPECT_FALSE(at::allclose(base(c, head, 3)->forward(ids(), {}), trained->forward(ids(), {}))) << arch;
  }
}

TEST(PeftAdapterTest, UnsupportedOrMismatchedAdaptersAreRejected) {
  auto c = fixtures::tiny_config("llama");
  auto m = base(c, "causal_lm", 0);
  LoraConfig lora;
  lora.r = 4;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(2);
  attach_lora(*m, lora, gen);
  TempDir dir("peft_bad");
  save_peft_adapter(*m, lora, dir.path.string());
  const auto cfg_path = (dir.path / "adapter_config.json").string();
  const auto original = json::parse(std::ifstream(cfg_path));
  const auto expect_error = [&](const std::function<void(json&)>& patch, const std::string& message) {
    auto j = original;
    patch(j);
    std::ofstream(cfg_path) << j.dump();
    auto fresh = base(c, "causal_lm", 0);
    const auto e = error_of([&] { load_peft_adapter(*fresh, dir.path.string()); });
    EXPECT_NE(e.find(message), std::string::npos) << "expected \"" << message << "\", got \"" << e << "\"";
  };
  expect_error([](json& j) { j["use_dora"] = true; }, cfg_path + ": use_dora: DoRA is not supported");
  expect_error([](json& j) { j["bias"] = "all"; }, cfg_path + ": bias: expected \"none\"");
  expect_error([](json& j) { j["rank_pattern"] = {{"q_proj", 2}}; },
               "base_model.model.model.layers.0.self_attn.q_proj: expected lora_A [2, 16] and lora_B [16, 2] (r = 2 from "
               "adapter_config.json), got [4, 16] and [16, 4]");
  expect_error([](json& j) { j["rank_pattern"] = {{"q_proj", 0}}; }, cfg_path + ": rank_pattern.q_proj: expected an integer >= 1");
  expect_error([](json& j) { j["alpha_pattern"] = {{"(q_proj", 2}}; }, cfg_path + ": lora: alpha_pattern: expected valid regular expressions");
  expect_error([](json& j) { j["peft_type"] = "IA3"; }, "peft_type: expected \"LORA\"");
  expect_error([](json& j) { j["r"] = 8; },
               "base_model.model.model.layers.0.self_attn.q_proj: expected lora_A [8, 16] and lora_B [16, 8] (r = 8 from "
               "adapter_config.json), got [4, 16] and [16, 4]");
  std::ofstream(cfg_path) << original.dump();
  // An adapter for a deeper model: a module this one lacks.
  auto deeper_cfg = c;
  deeper_cfg.num_layers = 3;
  auto deeper = base(deeper_cfg, "causal_lm", 0);
  attach_lora(*deeper, lora, gen);
  TempDir deep_dir("peft_deep");
  save_peft_adapter(*deeper, lora, deep_dir.path.string());
  auto fresh = base(c, "causal_lm", 0);
  EXPECT_NE(error_of([&] { load_peft_adapter(*fresh, deep_dir.path.string()); })
                .find("the model has no linear layer \"model.layers.2.self_attn.q_proj\""),
            std::string::npos);
  EXPECT_NE(error_of([&] { load_peft_adapter(*fresh, (dir.path / "none").string()); }).find("adapter_config.json: not found"),
            std::string::npos);
  // Export refuses what PEFT could not reproduce.
  LoraConfig spectral = lora;
  spectral.init = "spectral";
  EXPECT_NE(error_of([&] { save_peft_adapter(*m, spectral, (dir.path / "s").string()); }).find("spectral-init adapter in PEFT's format without its starting factors"),
            std::string::npos);
  EXPECT_NE(error_of([&] { save_peft_adapter(*fresh, lora, (dir.path / "n").string()); }).find("no LoRA adapters"),
            std::string::npos);
}

// PEFT's rank_pattern / alpha_pattern: per-module r and alpha, a pattern matching the module
// name's dotted tail, the first matching pattern in the file's order; exported and re-imported.
TEST(PeftAdapterTest, RankAndAlphaPatternsGivePerModuleRanksAndScalings) {
  auto c = fixtures::tiny_config("llama");
  LoraConfig lora;
  lora.r = 4;
  lora.alpha = 8;
  lora.targets = {"q_proj", "v_proj"};
  // The first pattern wins even though the second matches too (PEFT: dict order).
  lora.rank_pattern = {{"layers\\.1\\.self_attn\\.q_proj", 2}, {"q_proj", 3}};
  lora.alpha_pattern = {{"v_proj", 12}};
  for (const bool rslora : {false, true}) {
    lora.rslora = rslora;
    auto m = base(c, "causal_lm", 0);
    auto gen = at::make_generator<at::CPUGeneratorImpl>(2);
    const auto adapters = attach_lora(*m, lora, gen);
    randomise_adapters(*m, 5);
    const auto scale = [&](int64_t r, double alpha) { return rslora ? alpha / std::sqrt(double(r)) : alpha / r; };
    std::map<std::string, std::pair<int64_t, double>> expected = {
        {"model.layers.0.self_attn.q_proj", {3, scale(3, 8)}}, {"model.layers.1.self_attn.q_proj", {2, scale(2, 8)}},
        {"model.layers.0.self_attn.v_proj", {4, scale(4, 12)}}, {"model.layers.1.self_attn.v_proj", {4, scale(4, 12)}}};
    ASSERT_EQ(adapters.size(), 4u);
    for (const auto& a : adapters) {
      EXPECT_EQ(a.A.size(0), expected.at(a.name).first) << a.name;
      EXPECT_EQ(a.B.size(1), expected.at(a.name).first) << a.name;
      EXPECT_DOUBLE_EQ(a.scaling, expected.at(a.name).second) << a.name;
    }
    TempDir dir("peft_patterns");
    save_peft_adapter(*m, lora, dir.path.string());
    const auto cfg = json::parse(std::ifstream(dir.path / "adapter_config.json"));
    EXPECT_EQ(cfg["rank_pattern"]["q_proj"], 3);
    EXPECT_EQ(cfg["alpha_pattern"]["v_proj"], 12);
    auto loaded = base(c, "causal_lm", 0);
    const auto back = load_peft_adapter(*loaded, dir.path.string());
    ASSERT_EQ(back.rank_pattern.size(), 2u);
    EXPECT_EQ(back.rank_pattern[0].first, "layers\\.1\\.self_attn\\.q_proj");  // the file's order kept
    for (const auto& a : find_adapters(*loaded)) EXPECT_DOUBLE_EQ(a.scaling, expected.at(a.name).second) << a.name;
    m->eval();
    loaded->eval();
    at::NoGradGuard ng;
    EXPECT_TRUE(at::equal(loaded->forward(ids(), {}), m->forward(ids(), {})));
  }
}

}  // namespace
}  // namespace lorascope
