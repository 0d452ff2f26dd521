// A tiny pretrained base and a labelled task on a toy language, for the tests that run the
// transformer recipes (in-process or through the lorascope binary); a tiny LoRA classifier roled
// as the trainer roles it, for the tests of routing and optimizers.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <ATen/CPUGeneratorImpl.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "models/lora.h"
#include "models/parameter_roles.h"
#include "models/sequence_model.h"
#include "tests/model_fixtures.h"
#include "trainer/train_recipe.h"
#include "trainer/train_schema.h"

namespace lorascope {

namespace fs = std::filesystem;
using nlohmann::json;

// A deterministic toy language: enough structure for a 2-layer model to learn in seconds.
// One folder per test process (ctest runs cases in parallel), named by tag.
struct Fixture {
  fs::path dir;
  explicit Fixture(const std::string& tag = "trainer") {
    dir = fs::temp_directory_path() / ("lorascope_" + tag + "_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    std::mt19937_64 rng(7);
    const std::vector<std::string> adj = {"good", "bad", "small", "big", "red", "old"};
    const std::vector<std::string> noun = {"cat", "dog", "mat", "tree", "house", "river"};
    const std::vector<std::string> verb = {"sees", "likes", "finds", "hears"};
    auto pick = [&](const std::vector<std::string>& v) { return v[rng() % v.size()]; };
    std::ofstream corpus(dir / "corpus.txt");
    for (int i = 0; i < 300; ++i) {
      corpus << "the " << pick(adj) << " " << pick(noun) << " " << pick(verb) << " the "
             << pick(noun) << " .\n\n";
    }
    std::ofstream tsv(dir / "task.tsv");
    tsv << "sentence\tlabel\n";
    for (int i = 0; i < 160; ++i) {
      const bool positive = i % 2 == 0;
      tsv << "the " << (positive ? "good" : "bad") << " " << pick(noun) << " " << pick(verb)
          << " the " << pick(adj) << " " << pick(noun) << "\t" << (positive ? 1 : 0) << "\n";
    }
  }
  ~Fixture() { fs::remove_all(dir); }

  RunSpec spec(json doc, const std::vector<std::string>& sets = {}) const {
    return resolve_runs_json(doc, "test", sets, train_schema(), check_train_config).at(0);
  }
  std::string pretrain() const {
    const auto base = (dir / "base").string();
    if (fs::exists(base + "/model.pt")) return base;
    json doc = {{"mode", "pretrain"}, {"device", "cpu"},
                {"model", {{"hidden_size", 32}, {"num_layers", 2}, {"num_heads", 2}, {"num_kv_heads", 1},
                           {"intermediate_size", 64}, {"max_positions", 64}}},
                {"tokenizer", {{"vocab_size", 64}}},
                {"data", {{"kind", "text"}, {"path", (dir / "corpus.txt").string()}, {"max_len", 32}}},
                {"optim", {{"name", "adamw"}, {"lr", 3e-3}}},
                {"train", {{"max_steps", 20}, {"batch_size", 8}}}};
    auto out = run_train(spec(doc), base, false);
    EXPECT_EQ(out.status, "completed");
    return base;
  }
  json finetune_doc(const std::string& base) const {
    return {{"mode", "finetune"}, {"device", "cpu"}, {"base", base},
            {"data", {{"kind", "glue_tsv"}, {"path", (dir / "task.tsv").string()}, {"max_len", 32}}},
            {"lora", {{"r", 4}, {"alpha", 8}, {"targets", {"q_proj", "v_proj"}}}},
            {"optim", {{"name", "muon"}, {"lr", 0.02}, {"momentum", 0.9}, {"orthogonalizer", "newton_schulz"},
                       {"adamw_lr", 3e-3}}},
            {"schedule", {{"kind", "cosine"}, {"warmup_steps", 2}}},
            {"train", {{"max_steps", 18}, {"batch_size", 8}, {"checkpoint_every", 6}, {"log_every", 1},
                       {"eval_every", 6}, {"eval_batches", 2}}},
            {"monitor", {{"every", 3}}}};
  }
};

// metrics.jsonl without the wall-clock fields, which differ between runs.
inline std::vector<json> records(const fs::path& path) {
  std::vector<json> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    auto j = json::parse(line);
    j.erase("wall_s");        // wall-clock fields differ between runs
    j.erase("tokens_per_s");
    out.push_back(j);
  }
  return out;
}

// A tiny llama classifier (3 labels) with LoRA (r 2) on q/v and the head trained in full,
// roled and frozen as the trainer does; model, adapters and head drawn from gen.
struct LoraClassifier {
  std::shared_ptr<SequenceModel> model;
  ParameterRoles roles;
};

inline LoraClassifier lora_classifier(at::Generator& gen) {
  LoraClassifier out;
  out.model = make_model(fixtures::tiny_config("llama"), "classification", 3, gen);
  LoraConfig lc;
  lc.r = 2;
  lc.modules_to_save = {"score"};
  attach_lora(*out.model, lc, gen);
  RoleRules rules;
  rules.trained_in_full = modules_to_save_prefixes(*out.model, lc.modules_to_save);
  rules.head_module = out.model->head_module();
  out.roles = parameter_roles(*out.model, rules);
  apply_roles(out.roles);
  return out;
}

inline LoraClassifier lora_classifier() {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1);
  return lora_classifier(gen);
}

// lora_classifier() with B nonzero, so that both factors move, and every trainable tensor given a
// seeded float gradient (the same generator, drawn on after the model).
inline LoraClassifier lora_with_grads() {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1);
  auto out = lora_classifier(gen);
  at::NoGradGuard no_grad;
  for (const auto& a : out.roles.adapters) a.B.copy_(at::randn(a.B.sizes(), gen, a.B.options()) * 0.1);
  for (const auto& p : out.roles.parameters) {
    if (p.trains()) p.tensor.mutable_grad() = at::randn(p.tensor.sizes(), gen, p.tensor.options());
  }
  return out;
}

// Runs doc uninterrupted into a/, and killed after step `halt` then resumed into b/: the two
// metrics.jsonl must be equal line by line (the same trajectory).
inline void expect_resume_continues(const Fixture& fx, const json& doc, int halt, const fs::path& a,
                                    const fs::path& b) {
  ASSERT_EQ(run_train(fx.spec(doc), a.string(), false).status, "completed");
  ASSERT_EQ(run_train(fx.spec(doc, {"train.halt_at_step=" + std::to_string(halt)}), b.string(), false).status,
            "halted");
  ASSERT_EQ(run_train(fx.spec(doc), b.string(), true).status, "completed");
  const auto ra = records(a / "metrics.jsonl"), rb = records(b / "metrics.jsonl");
  ASSERT_EQ(ra.size(), rb.size());
  for (size_t i = 0; i < ra.size(); ++i) EXPECT_EQ(ra[i], rb[i]) << "line " << i;
}

}  // namespace lorascope
