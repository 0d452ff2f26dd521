// The paper's LLM setups (configs/paper/): fine-tuning from Hugging Face directories through
// `lorascope finetune --model DIR`, with clear errors when checkpoint or data are missing, and
// real (tiny) runs that export PEFT adapters and continue from them.
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "data_fixtures.h"
#include "models/hf_checkpoint.h"
#include "models/safetensors.h"
#include "models/sequence_model.h"
#include "trainer/memory_budget.h"

namespace lorascope {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::string kPaper = std::string(LORASCOPE_CONFIGS_DIR) + "/paper/";
const std::string kFixtures = std::string(LORASCOPE_SOURCE_DIR) + "/tests/fixtures/";

struct Result {
  int code;
  std::string err;
};

Result lorascope(const std::string& args, const fs::path& dir) {
  const auto err = dir / "stderr.txt";
  const std::string cmd = std::string(LORASCOPE_BINARY) + " --threads 1 " + args + " >/dev/null 2>" + err.string();
  const int status = std::system(cmd.c_str());
  return {WEXITSTATUS(status), read_all(err)};
}

// config.json + model.safetensors of a random model of the given HF config, plus a tokenizer.
void write_hf_dir(const fs::path& dir, const json& config, const std::string& tokenizer) {
  fs::create_directories(dir);
  std::ofstream(dir / "config.json") << config.dump(2);
  const auto info = parse_hf_config(config, "fixture");
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  const bool llama = info.family == "llama";
  auto model = make_model(info.config, llama ? "causal_lm" : "classification", llama ? 0 : 2, gen);
  std::map<std::string, at::Tensor> state;  // a masked-LM body: no classifier
  for (const auto& p : model->named_parameters()) {
    if (p.key().rfind("classifier.", 0) != 0) state[p.key()] = p.value().detach();
  }
  save_safetensors(state, (dir / "model.safetensors").string());
  fs::copy_file(kFixtures + tokenizer, dir / "tokenizer.json");
}

json roberta_config() {
  return json::parse(R"({"architectures": ["RobertaForMaskedLM"], "model_type": "roberta", "vocab_size": 280,
    "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
    "max_position_embeddings": 40, "type_vocab_size": 1, "layer_norm_eps": 1e-05, "pad_token_id": 1,
    "hidden_act": "gelu"})");
}

json llama_config() {
  return json::parse(R"({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 272,
    "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
    "num_key_value_heads": 2, "max_position_embeddings": 512, "rms_norm_eps": 1e-05, "rope_theta": 500000.0,
    "rope_scaling": {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                     "original_max_position_embeddings": 64}, "tie_word_embeddings": true, "hidden_act": "silu"})");
}

void write_sst2(const fs::path& path) {
  std::ofstream tsv(path);
  tsv << "sentence\tlabel\n";
  for (int i = 0; i < 48; ++i) tsv << (i % 2 ? "hello world , held" : "the world is cold") << " " << i << "\t" << i % 2 << "\n";
}

void write_alpaca(const fs::path& path) {
  json records = json::array();
  for (int i = 0; i < 24; ++i) {
    records.push_back({{"instruction", "Say hello " + std::to_string(i)}, {"input", i % 2 ? "world" : ""},
                       {"output", "hello world held"}});
  }
  std::ofstream(path) << records.dump();
}

struct Dir {
  fs::path path = fs::temp_directory_path() / ("lorascope_paper_" + std::to_string(::getpid()) + "_" +
                                               ::testing::UnitTest::GetInstance()->current_test_info()->name());
  Dir() {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~Dir() { fs::remove_all(path); }
};

TEST(PaperConfigTest, MissingCheckpointOrDataIsAClearUsageError) {
  Dir d;
  // As shipped: the data path does not exist here.
  auto r = lorascope("finetune --config " + kPaper + "roberta_sst2.json --out " + (d.path / "o").string(), d.path);
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("data/SST-2/train.tsv"), std::string::npos) << r.err;
  write_sst2(d.path / "train.tsv");
  r = lorascope("finetune --config " + kPaper + "roberta_sst2.json --out " + (d.path / "o").string() +
                    " --set data.path=" + (d.path / "train.tsv").string() + " --model " + (d.path / "nope").string(),
                d.path);
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find((d.path / "nope").string() + ": base: not a directory"), std::string::npos) << r.err;
  // A directory without weights or tokenizer.
  fs::create_directories(d.path / "hf");
  std::ofstream(d.path / "hf" / "config.json") << roberta_config().dump();
  r = lorascope("finetune --config " + kPaper + "roberta_sst2.json --out " + (d.path / "o").string() +
                    " --set data.path=" + (d.path / "train.tsv").string() + " --model " + (d.path / "hf").string(),
                d.path);
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("model.pt: not found"), std::string::npos) << r.err;
  write_hf_dir(d.path / "hf", roberta_config(), "tiny_gpt2_tokenizer.json");
  fs::remove(d.path / "hf" / "tokenizer.json");
  r = lorascope("finetune --config " + kPaper + "roberta_sst2.json --out " + (d.path / "o").string() +
                    " --set data.path=" + (d.path / "train.tsv").string() + " --model " + (d.path / "hf").string(),
                d.path);
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("no tokenizer.json or tokenizer.model"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(d.path / "o")) << "nothing written on bad input";
  // The shipped Alpaca config resolves and names its data file.
  r = lorascope("finetune --config " + kPaper + "llama32_alpaca.json --out " + (d.path / "o").string(), d.path);
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("alpaca_data.json"), std::string::npos) << r.err;
  // A tokenizer larger than the model's vocabulary.
  auto small = roberta_config();
  small["vocab_size"] = 100;
  write_hf_dir(d.path / "small", small, "tiny_gpt2_tokenizer.json");
  r = lorascope("finetune --config " + kPaper + "roberta_sst2.json --out " + (d.path / "o").string() +
                    " --set data.path=" + (d.path / "train.tsv").string() + " --model " + (d.path / "small").string(),
                d.path);
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("vocabulary of 271 ids, but " + (d.path / "small").string() + "/config.json has vocab_size 100"),
            std::string::npos)
      << r.err;
}

TEST(PaperConfigTest, RobertaSst2RunsOnAHfDirectoryAndExportsPeft) {
  Dir d;
  write_hf_dir(d.path / "roberta", roberta_config(), "tiny_gpt2_tokenizer.json");
  write_sst2(d.path / "train.tsv");
  const std::string common = " --model " + (d.path / "roberta").string() + " --set data.path=" +
                             (d.path / "train.tsv").string() + " --set train.max_steps=2 --set train.batch_size=4" +
                             " --set device=cpu";
  auto r = lorascope("compare --config " + kPaper + "roberta_sst2.json --out " + (d.path / "out").string() + common,
                     d.path);
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* run : {"muon", "adamw"}) {
    const auto summary = json::parse(std::ifstream(d.path / "out" / run / "summary.json"));
    EXPECT_EQ(summary["status"], "completed") << run;
    EXPECT_EQ(summary["steps"], 2);
    const auto cfg = json::parse(std::ifstream(d.path / "out" / run / "adapter" / "adapter_config.json"));
    EXPECT_EQ(cfg["target_modules"], json::array({"query", "value"}));
    EXPECT_EQ(cfg["r"], 8);
    EXPECT_EQ(cfg["lora_alpha"], 16.0);
    EXPECT_EQ(cfg["task_type"], "SEQ_CLS");
    EXPECT_EQ(cfg["modules_to_save"], json::array({"classifier"}));
    const SafetensorsFile f((d.path / "out" / run / "adapter" / "adapter_model.safetensors").string());
    EXPECT_TRUE(f.contains("base_model.model.roberta.encoder.layer.1.attention.self.value.lora_B.weight"));
    EXPECT_TRUE(f.contains("base_model.model.classifier.out_proj.weight"));
  }
  // Continued training from the exported adapter (its r, alpha, targets and head).
  r = lorascope("finetune --config " + kPaper + "roberta_sst2.json --out " + (d.path / "more").string() + common +
                    " --set lora.adapter=" + (d.path / "out" / "adamw" / "adapter").string() + " --set lora.r=2",
                d.path);
  ASSERT_EQ(r.code, 0) << r.err;
  const SafetensorsFile again((d.path / "more" / "adamw" / "adapter" / "adapter_model.safetensors").string());
  EXPECT_EQ(again.header().tensors.at("base_model.model.roberta.encoder.layer.0.attention.self.query.lora_A.weight").shape,
            (std::vector<int64_t>{8, 16}))
      << "r from the imported adapter, not lora.r";
}

TEST(PaperConfigTest, Llama32AlpacaRunsOnAHfDirectory) {
  Dir d;
  write_hf_dir(d.path / "llama", llama_config(), "tiny_llama3_tokenizer.json");
  write_alpaca(d.path / "alpaca.json");
  auto r = lorascope("finetune --config " + kPaper + "llama32_alpaca.json --out " + (d.path / "out").string() +
                         " --model " + (d.path / "llama").string() + " --set data.path=" +
                         (d.path / "alpaca.json").string() +
                         " --set train.max_steps=2 --set train.batch_size=2 --set train.grad_accum=2 --set bf16=false"
                         " --set device=cpu --set data.max_len=300",
                     d.path);
  ASSERT_EQ(r.code, 0) << r.err;
  const auto summary = json::parse(std::ifstream(d.path / "out" / "muon" / "summary.json"));
  EXPECT_EQ(summary["status"], "completed");
  // The Alpaca prompt (~170 byte-level tokens here) fits in max_len, so the response has loss.
  EXPECT_GT(summary["final_train_loss"].get<double>(), 1.0);
  EXPECT_TRUE(std::isfinite(summary["final_train_loss"].get<double>()));
  const auto cfg = json::parse(std::ifstream(d.path / "out" / "adamw" / "adapter" / "adapter_config.json"));
  EXPECT_EQ(cfg["task_type"], "CAUSAL_LM");
  EXPECT_EQ(cfg["target_modules"], json::array({"q_proj", "v_proj"}));
  const auto resolved = json::parse(std::ifstream(d.path / "out" / "adamw" / "config.json"));
  EXPECT_EQ(resolved["schedule"]["warmup_fraction"], 0.04);
  EXPECT_EQ(resolved["train"]["epochs"], 3);
}


// A checkpoint larger than the host's free memory is refused from its headers, with both sizes,
// before anything is allocated (the file is sparse: its claimed bytes take no disk space).
TEST(PaperConfigTest, CheckpointLargerThanTheHostIsRefusedWithTheSizes) {
  Dir d;
  write_sst2(d.path / "train.tsv");
  write_hf_dir(d.path / "hf", roberta_config(), "tiny_gpt2_tokenizer.json");
  const int64_t available = host_available_bytes();
  ASSERT_GT(available, 0);
  const uint64_t numel = static_cast<uint64_t>(available) / 2 + 1;  // 2x the free memory as float32
  const std::string header = json{{"huge", {{"dtype", "F32"}, {"shape", {numel}}, {"data_offsets", {0, 4 * numel}}}}}.dump();
  const auto file = d.path / "hf" / "model.safetensors";
  {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    uint64_t n = header.size();
    for (int i = 0; i < 8; ++i) out.put(static_cast<char>((n >> (8 * i)) & 0xff));
    out << header;
  }
  fs::resize_file(file, 8 + header.size() + 4 * numel);
  const auto r = lorascope("finetune --config " + kPaper + "roberta_sst2.json --out " + (d.path / "o").string() +
                               " --set data.path=" + (d.path / "train.tsv").string() + " --model " +
                               (d.path / "hf").string(),
                           d.path);
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("model " + (d.path / "hf").string() + " ("), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(" GiB, but this machine has "), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(d.path / "o")) << "nothing written";
}

}  // namespace
}  // namespace lorascope
