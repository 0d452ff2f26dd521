// A tiny pretrain + fine-tune setting shared by the trainer and fault-injection tests: a toy
// language (a corpus and a labelled TSV) that a 2-layer model learns in seconds.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "trainer/train_recipe.h"
#include "trainer/train_schema.h"

namespace lorascope::train_fixtures {

namespace fs = std::filesystem;
using nlohmann::json;

// A deterministic toy language: enough structure for a 2-layer model to learn in seconds.
struct Fixture {
  fs::path dir;
  Fixture() {
    dir = fs::temp_directory_path() / ("lorascope_trainer_" + std::to_string(::getpid()));
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

// metrics.jsonl without its wall-clock fields.
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

}  // namespace lorascope::train_fixtures
