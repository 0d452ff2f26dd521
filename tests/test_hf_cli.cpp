// `lorascope hf logits | random-adapter | tokenize`, the commands tests/interop/ runs blind on
// the GPU machine: their outputs against the same computations done in-process.
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/grad_mode.h>  // at::NoGradGuard (not in <ATen/ATen.h> from LibTorch 2 on)
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "data/tokenizer.h"
#include "data_fixtures.h"
#include "models/hf_checkpoint.h"
#include "models/peft_adapter.h"
#include "models/safetensors.h"

namespace lorascope {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

int run(const std::string& args, const fs::path& dir, std::string* err) {
  const auto err_path = dir / "stderr.txt";
  const std::string cmd = std::string(LORASCOPE_BINARY) + " --threads 1 " + args + " >/dev/null 2>" + err_path.string();
  const int status = std::system(cmd.c_str());
  *err = read_all(err_path);
  return WEXITSTATUS(status);
}

TEST(HfCliTest, LogitsAndRandomAdapterMatchTheLibrary) {
  TempDir dir("hf_cli");
  const json cfg = json::parse(R"({"architectures": ["LlamaForCausalLM"], "vocab_size": 40, "hidden_size": 16,
    "intermediate_size": 24, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
    "rope_theta": 500000.0, "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
    "high_freq_factor": 4.0, "original_max_position_embeddings": 32}, "tie_word_embeddings": false})");
  const auto info = parse_hf_config(cfg, "c");
  auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
  auto src = make_model(info.config, "causal_lm", 0, gen);
  std::map<std::string, at::Tensor> state;
  for (const auto& p : src->named_parameters()) state[p.key()] = p.value().detach();
  const auto model_dir = dir.path / "model";
  fs::create_directories(model_dir);
  std::ofstream(model_dir / "config.json") << cfg.dump();
  save_safetensors(state, (model_dir / "model.safetensors").string());
  dir.write("ids.json", R"({"input_ids": [[5, 6, 7, 8], [9, 10, 11, 0]], "attention_mask": [[1, 1, 1, 1], [1, 1, 1, 0]]})");

  std::string err;
  const std::string common = "--model " + model_dir.string() + " --ids " + (dir.path / "ids.json").string();
  ASSERT_EQ(run("hf logits " + common + " --out " + (dir.path / "l.safetensors").string(), dir.path, &err), 0) << err;
  const auto ids = at::tensor(std::vector<int64_t>{5, 6, 7, 8, 9, 10, 11, 0}, at::kLong).view({2, 4});
  const auto mask = at::tensor(std::vector<int64_t>{1, 1, 1, 1, 1, 1, 1, 0}, at::kLong).view({2, 4});
  src->eval();
  at::NoGradGuard ng;
  const auto want = src->forward(ids, mask);
  const auto got = load_safetensors((dir.path / "l.safetensors").string()).at("logits");
  // Same weights and ops; only the thread count may differ (--threads 1 there).
  EXPECT_TRUE(at::allclose(got, want, 1e-6, 1e-7)) << (got - want).abs().max().item<double>();

  const auto adapter = dir.path / "adapter";
  ASSERT_EQ(run("hf random-adapter --model " + model_dir.string() + " --out " + adapter.string() +
                    " --r 4 --alpha 8 --targets q_proj,o_proj --seed 3",
                dir.path, &err),
            0)
      << err;
  const auto acfg = json::parse(std::ifstream(adapter / "adapter_config.json"));
  EXPECT_EQ(acfg["target_modules"], json::array({"q_proj", "o_proj"}));
  ASSERT_EQ(run("hf logits " + common + " --adapter " + adapter.string() + " --out " + (dir.path / "a.safetensors").string(),
                dir.path, &err),
            0)
      << err;
  load_peft_adapter(*src, adapter.string());
  src->eval();
  const auto with_adapter = src->forward(ids, mask);
  EXPECT_TRUE(at::allclose(load_safetensors((dir.path / "a.safetensors").string()).at("logits"), with_adapter, 1e-6, 1e-7));
  EXPECT_GT((with_adapter - want).abs().max().item<double>(), 1e-4) << "a random B changes the logits";

  // Bad input: exit 2 naming the file.
  dir.write("bad.json", R"({"input_ids": [[1, 2], [3]]})");
  EXPECT_EQ(run("hf logits --model " + model_dir.string() + " --ids " + (dir.path / "bad.json").string() + " --out x",
                dir.path, &err),
            2);
  EXPECT_NE(err.find("bad.json: input_ids: expected equal-length non-empty rows"), std::string::npos) << err;
  dir.write("big.json", R"({"input_ids": [[1, 40]]})");
  EXPECT_EQ(run("hf logits --model " + model_dir.string() + " --ids " + (dir.path / "big.json").string() + " --out x",
                dir.path, &err),
            2);
  EXPECT_NE(err.find("expected ids in [0, 40)"), std::string::npos) << err;
  EXPECT_EQ(run("hf logits --model " + (dir.path / "none").string() + " --ids " + (dir.path / "ids.json").string() +
                    " --out x",
                dir.path, &err),
            2);
  EXPECT_NE(err.find("config.json: not found"), std::string::npos) << err;
}

TEST(HfCliTest, TokenizeWritesOneIdListPerLine) {
  TempDir dir("hf_cli_tok");
  const std::string tok = std::string(LORASCOPE_SOURCE_DIR) + "/tests/fixtures/tiny_gpt2_tokenizer.json";
  dir.write("lines.txt", "hello world\nheld\n\xC3\xA9 x\n");
  std::string err;
  ASSERT_EQ(run("hf tokenize --tokenizer " + tok + " --in " + (dir.path / "lines.txt").string() + " --out " +
                    (dir.path / "ids.jsonl").string(),
                dir.path, &err),
            0)
      << err;
  const auto t = Tokenizer::load(tok);
  std::ifstream in(dir.path / "ids.jsonl");
  std::string line;
  std::vector<std::vector<int64_t>> got;
  while (std::getline(in, line)) got.push_back(json::parse(line).get<std::vector<int64_t>>());
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0], t.encode("hello world"));
  EXPECT_EQ(got[1], t.encode("held"));
  EXPECT_EQ(got[2], t.encode("\xC3\xA9 x"));
  EXPECT_EQ(got[0].size(), 2u);
}

}  // namespace
}  // namespace lorascope
