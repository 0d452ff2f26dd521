// Hugging Face checkpoints: config.json parsing (LLaMA 3 rope scaling, GQA, head_dim, tied
// embeddings; RoBERTa / BERT), exact loads of tiny checkpoints written with lorascope's own
// safetensors writer, and every loading error naming the file and key.
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/grad_mode.h>  // at::NoGradGuard (not in <ATen/ATen.h> from LibTorch 2 on)

#include <cmath>
#include <filesystem>
#include <fstream>

#include "error_of.h"
#include "data_fixtures.h"
#include "models/hf_checkpoint.h"
#include "models/rope.h"
#include "models/safetensors.h"
#include "models/roberta.h"
#include "models/transformer_layers.h"

namespace lorascope {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// LLaMA-3.2-style, shrunk: GQA (4 heads, 2 KV heads), head_dim 8 != hidden / heads, tied
// embeddings, llama3 rope scaling whose three frequency bands all occur for head_dim 8.
json tiny_llama_config() {
  return json::parse(R"({
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 50, "hidden_size": 16,
    "intermediate_size": 24, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
    "head_dim": 8, "max_position_embeddings": 256, "rms_norm_eps": 1e-05, "rope_theta": 500000.0,
    "rope_scaling": {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                     "original_max_position_embeddings": 64},
    "tie_word_embeddings": true, "hidden_act": "silu", "attention_bias": false, "mlp_bias": false,
    "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": null, "torch_dtype": "float32"})");
}

json tiny_roberta_config(const std::string& arch) {
  const bool bert = arch.rfind("Bert", 0) == 0;
  json j = {{"architectures", {arch}}, {"model_type", bert ? "bert" : "roberta"}, {"vocab_size", 60},
            {"hidden_size", 16}, {"intermediate_size", 24}, {"num_hidden_layers", 2}, {"num_attention_heads", 4},
            {"max_position_embeddings", 40}, {"type_vocab_size", bert ? 2 : 1}, {"layer_norm_eps", bert ? 1e-12 : 1e-5},
            {"pad_token_id", bert ? 0 : 1}, {"hidden_act", "gelu"}, {"position_embedding_type", "absolute"}};
  if (arch.find("SequenceClassification") != std::string::npos) {
    j["id2label"] = {{"0", "a"}, {"1", "b"}, {"2", "c"}};
  }
  return j;
}

std::shared_ptr<SequenceModel> random_model(const HfModelInfo& info, const std::string& head, int64_t labels,
                                            uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto m = make_model(info.config, head, labels, gen);
  // Norm weights and biases start at 1 / 0: randomise every tensor so a wrong copy shows.
  at::NoGradGuard no_grad;
  for (auto& p : m->named_parameters()) p.value().normal_(0, 0.5, gen);
  m->eval();
  return m;
}

// HF names of a lorascope model, written independently of hf_parameter_name (BERT's renames).
std::string bert_name(std::string n) {
  if (n.rfind("classifier.dense.", 0) == 0) return "bert.pooler.dense." + n.substr(17);
  if (n.rfind("classifier.out_proj.", 0) == 0) return "classifier." + n.substr(20);
  if (n.rfind("roberta.", 0) == 0) return "bert." + n.substr(8);
  return n;
}

std::map<std::string, at::Tensor> hf_state(SequenceModel& m, bool bert = false) {
  std::map<std::string, at::Tensor> out;
  for (const auto& p : m.named_parameters()) out[bert ? bert_name(p.key()) : p.key()] = p.value().detach().clone();
  return out;
}

void write_dir(const TempDir& dir, const json& config, const std::map<std::string, at::Tensor>& tensors) {
  dir.write("config.json", config.dump(2));
  save_safetensors(tensors, (dir.path / "model.safetensors").string(), {{"format", "pt"}});
}

at::Tensor ids_for(int64_t vocab) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(11);
  return at::randint(2, vocab, {2, 9}, gen, at::kLong);
}

TEST(HfConfigTest, LlamaConfigKeysMapToTransformerConfig) {
  const auto info = parse_hf_config(tiny_llama_config(), "d/config.json");
  EXPECT_EQ(info.architecture, "LlamaForCausalLM");
  EXPECT_EQ(info.family, "llama");
  const auto& c = info.config;
  EXPECT_EQ(c.arch, "llama");
  EXPECT_EQ(c.num_heads, 4);
  EXPECT_EQ(c.num_kv_heads, 2);
  EXPECT_EQ(c.head_dim(), 8);
  EXPECT_EQ(c.rms_norm_eps, 1e-5);
  EXPECT_EQ(c.rope_theta, 500000.0);
  EXPECT_EQ(c.rope_type, "llama3");
  EXPECT_EQ(c.rope_factor, 32.0);
  EXPECT_EQ(c.rope_original_max_positions, 64);
  EXPECT_TRUE(c.tie_embeddings);
  // transformers 5 writes rope_parameters (with rope_theta inside) instead of rope_scaling.
  auto v5 = tiny_llama_config();
  v5["rope_parameters"] = v5["rope_scaling"];
  v5["rope_parameters"]["rope_theta"] = 123.0;
  v5.erase("rope_scaling");
  v5.erase("rope_theta");
  const auto c5 = parse_hf_config(v5, "c").config;
  EXPECT_EQ(c5.rope_theta, 123.0);
  EXPECT_EQ(c5.rope_type, "llama3");
  // LlamaConfig's defaults: untied, KV heads = heads.
  auto plain = tiny_llama_config();
  for (const char* k : {"tie_word_embeddings", "num_key_value_heads", "rope_scaling", "head_dim"}) plain.erase(k);
  plain["hidden_size"] = 32;
  const auto cp = parse_hf_config(plain, "c").config;
  EXPECT_FALSE(cp.tie_embeddings);
  EXPECT_EQ(cp.num_kv_heads, 4);
  EXPECT_EQ(cp.rope_type, "default");
  EXPECT_EQ(cp.head_dim(), 8);
}

TEST(HfConfigTest, BadConfigsNameTheKey) {
  const std::vector<std::pair<std::function<void(json&)>, std::string>> cases = {
      {[](json& j) { j.erase("hidden_size"); }, "d/config.json: hidden_size: expected an integer >= 1, got nothing"},
      {[](json& j) { j["architectures"] = {"GPT2LMHeadModel"}; }, "unsupported architecture \"GPT2LMHeadModel\""},
      {[](json& j) { j["rope_scaling"]["rope_type"] = "yarn"; }, "rope_scaling: rope_type: unsupported \"yarn\""},
      {[](json& j) { j["rope_scaling"].erase("low_freq_factor"); }, "rope_scaling: low_freq_factor: missing"},
      {[](json& j) { j["attention_bias"] = true; }, "attention_bias: expected [false]"},
      {[](json& j) { j["hidden_act"] = "gelu"; }, "hidden_act: expected [\"silu\"]"},
      {[](json& j) { j["num_key_value_heads"] = 3; }, "num_kv_heads: expected a divisor of num_heads (4), got 3"},
      {[](json& j) { j["vocab_size"] = "50"; }, "vocab_size: expected an integer >= 1, got \"50\""},
  };
  for (const auto& [patch, message] : cases) {
    auto j = tiny_llama_config();
    patch(j);
    const auto e = error_of([&] { parse_hf_config(j, "d/config.json"); });
    EXPECT_NE(e.find(message), std::string::npos) << "expected \"" << message << "\", got \"" << e << "\"";
  }
  TempDir dir("hf_noconfig");
  EXPECT_NE(error_of([&] { read_hf_config(dir.path.string()); }).find("config.json: not found"), std::string::npos);
}

// transformers' _compute_llama3_parameters, written out per frequency in float64.
TEST(HfConfigTest, Llama3RopeScalingMatchesTheFormula) {
  TransformerConfig c;  // LLaMA-3.2-1B: head_dim 64, theta 500000, factor 32, 1, 4, 8192
  c.hidden_size = 2048;
  c.num_heads = 32;
  c.rope_theta = 500000.0;
  c.rope_type = "llama3";
  c.rope_factor = 32;
  c.rope_low_freq_factor = 1;
  c.rope_high_freq_factor = 4;
  c.rope_original_max_positions = 8192;
  const auto got = rope_inv_freq(c);
  ASSERT_EQ(got.numel(), 32);
  int low = 0, mid = 0, high = 0;
  for (int i = 0; i < 32; ++i) {
    const double f = 1.0 / std::pow(500000.0, 2.0 * i / 64.0);
    const double wavelen = 2 * M_PI / f;
    double want;
    if (wavelen < 8192.0 / 4) {
      want = f, ++high;
    } else if (wavelen > 8192.0 / 1) {
      want = f / 32, ++low;
    } else {
      const double s = (8192.0 / wavelen - 1) / (4 - 1);
      want = (1 - s) * f / 32 + s * f, ++mid;
    }
    EXPECT_NEAR(got[i].item<double>(), want, 1e-15 * want) << i;
  }
  EXPECT_GT(low, 0);
  EXPECT_GT(mid, 0);
  EXPECT_GT(high, 0);
  c.rope_type = "linear";
  const double linear5 = 1.0 / std::pow(500000.0, 10.0 / 64) / 32;
  EXPECT_NEAR(rope_inv_freq(c)[5].item<double>(), linear5, 1e-14 * linear5);
  // The rotary tables use these frequencies: angle(t, i) = t inv_freq_i.
  const auto cs = rotary_cos_sin(7, got, at::TensorOptions().dtype(at::kDouble));
  EXPECT_NEAR(cs.first[6][40].item<double>(), std::cos(6 * got[8].item<double>()), 1e-15);
  EXPECT_NEAR(cs.second[3][3].item<double>(), std::sin(3 * got[3].item<double>()), 1e-15);
}

TEST(HfLoadTest, LlamaCheckpointLoadsExactly) {
  TempDir dir("hf_llama");
  const auto info = parse_hf_config(tiny_llama_config(), "c");
  auto src = random_model(info, "causal_lm", 0, 1);
  auto state = hf_state(*src);
  EXPECT_TRUE(state.count("model.layers.1.self_attn.q_proj.weight"));
  EXPECT_EQ(state.at("model.layers.1.self_attn.q_proj.weight").sizes(), at::IntArrayRef({32, 16})) << "4 heads x 8";
  EXPECT_EQ(state.at("model.layers.1.self_attn.k_proj.weight").sizes(), at::IntArrayRef({16, 16})) << "2 KV heads x 8";
  EXPECT_FALSE(state.count("lm_head.weight")) << "tied";
  state["lm_head.weight"] = state.at("model.embed_tokens.weight");  // some saves keep the tied copy
  state["model.layers.0.self_attn.rotary_emb.inv_freq"] = at::ones({4});  // old buffers
  write_dir(dir, tiny_llama_config(), state);

  auto gen = at::make_generator<at::CPUGeneratorImpl>(99);
  HfLoadReport report;
  auto m = load_hf_model(dir.path.string(), "causal_lm", 0, gen, &report);
  EXPECT_TRUE(report.fresh.empty());
  EXPECT_EQ(report.ignored.size(), 2u);
  for (const auto& p : src->named_parameters()) {
    EXPECT_TRUE(at::equal(m->named_parameters()[p.key()], p.value())) << p.key();
  }
  m->eval();
  at::NoGradGuard ng;
  const auto ids = ids_for(50);
  EXPECT_TRUE(at::equal(m->forward(ids, {}), src->forward(ids, {})));

  // Sharded and stored in bfloat16: each value is the bf16 rounding of the source.
  TempDir sharded("hf_llama_sharded");
  std::map<std::string, at::Tensor> shard1, shard2;
  json weight_map;
  int i = 0;
  for (const auto& [k, v] : hf_state(*src)) {
    const bool first = i++ % 2 == 0;
    (first ? shard1 : shard2)[k] = v.to(at::kBFloat16);
    weight_map[k] = first ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
  }
  sharded.write("config.json", tiny_llama_config().dump());
  save_safetensors(shard1, (sharded.path / "model-00001-of-00002.safetensors").string());
  save_safetensors(shard2, (sharded.path / "model-00002-of-00002.safetensors").string());
  sharded.write("model.safetensors.index.json", json({{"weight_map", weight_map}}).dump());
  auto m16 = load_hf_model(sharded.path.string(), "causal_lm", 0, gen);
  for (const auto& p : src->named_parameters()) {
    EXPECT_TRUE(at::equal(m16->named_parameters()[p.key()], p.value().to(at::kBFloat16).to(at::kFloat))) << p.key();
  }
}

TEST(HfLoadTest, LoadingErrorsNameTheFileAndKey) {
  const auto info = parse_hf_config(tiny_llama_config(), "c");
  auto src = random_model(info, "causal_lm", 0, 1);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(0);
  const auto attempt = [&](const std::function<void(json&, std::map<std::string, at::Tensor>&)>& patch) {
    TempDir dir("hf_bad");
    auto cfg = tiny_llama_config();
    auto state = hf_state(*src);
    patch(cfg, state);
    write_dir(dir, cfg, state);
    return std::make_pair(error_of([&] { load_hf_model(dir.path.string(), "causal_lm", 0, gen); }),
                          (dir.path / "model.safetensors").string());
  };
  auto [e1, f1] = attempt([](json&, auto& s) { s.erase("model.layers.1.mlp.down_proj.weight"); });
  EXPECT_NE(e1.find(f1 + ": missing tensor \"model.layers.1.mlp.down_proj.weight\""), std::string::npos) << e1;
  auto [e2, f2] = attempt([](json& c, auto&) { c["intermediate_size"] = 25; });
  EXPECT_NE(e2.find(f2 + ": model.layers.0.mlp.gate_proj.weight: expected shape [25, 16] (from config.json), got [24, 16]"),
            std::string::npos) << e2;
  auto [e3, f3] = attempt([](json&, auto& s) { s["model.layers.2.self_attn.q_proj.weight"] = at::zeros({32, 16}); });
  EXPECT_NE(e3.find(f3 + ": unexpected tensor \"model.layers.2.self_attn.q_proj.weight\""), std::string::npos) << e3;
  auto [e4, f4] = attempt([](json& c, auto&) { c["tie_word_embeddings"] = false; });
  EXPECT_NE(e4.find("missing tensor \"lm_head.weight\""), std::string::npos) << e4;
  auto [e5, f5] = attempt([](json& c, auto&) { c["architectures"] = {"MistralForCausalLM"}; });
  EXPECT_NE(e5.find("config.json: architectures: unsupported architecture \"MistralForCausalLM\""), std::string::npos) << e5;
  auto [e6, f6] = attempt([](json&, auto& s) { s["model.norm.weight"] = at::ones({16}, at::kLong); });
  EXPECT_NE(e6.find("model.norm.weight: expected floating-point weights"), std::string::npos) << e6;
}

TEST(HfLoadTest, RobertaHeadIsLoadedOrFreshAndMlmHeadIgnored) {
  const auto cls = tiny_roberta_config("RobertaForSequenceClassification");
  const auto info = parse_hf_config(cls, "c");
  EXPECT_EQ(info.num_labels, 3);
  EXPECT_EQ(info.config.pad_token_id, 1);
  EXPECT_EQ(info.config.layer_norm_eps, 1e-5);
  EXPECT_EQ(info.config.positions, "padding_offset");
  auto src = random_model(info, "classification", 3, 2);
  TempDir dir("hf_roberta");
  write_dir(dir, cls, hf_state(*src));
  auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
  HfLoadReport report;
  auto m = load_hf_model(dir.path.string(), "classification", 0, gen, &report);
  EXPECT_TRUE(report.fresh.empty());
  m->eval();
  at::NoGradGuard ng;
  const auto ids = ids_for(60);
  EXPECT_TRUE(at::equal(m->forward(ids, {}), src->forward(ids, {})));
  // Another label count than the checkpoint's head: a clear shape error.
  EXPECT_NE(error_of([&] { load_hf_model(dir.path.string(), "classification", 2, gen); })
                .find("classifier.out_proj.weight: expected shape [2, 16] (from config.json), got [3, 16]"),
            std::string::npos);

  // The masked-LM body: lm_head ignored, a fresh classifier reported.
  TempDir mlm("hf_roberta_mlm");
  auto state = hf_state(*src);
  for (auto it = state.begin(); it != state.end();) it = it->first.rfind("classifier.", 0) == 0 ? state.erase(it) : ++it;
  state["lm_head.dense.weight"] = at::zeros({16, 16});
  state["lm_head.bias"] = at::zeros({60});
  state["roberta.pooler.dense.weight"] = at::zeros({16, 16});
  write_dir(mlm, tiny_roberta_config("RobertaForMaskedLM"), state);
  auto body = load_hf_model(mlm.path.string(), "classification", 2, gen, &report);
  EXPECT_EQ(report.fresh, (std::vector<std::string>{"classifier.dense.weight", "classifier.dense.bias",
                                                     "classifier.out_proj.weight", "classifier.out_proj.bias"}));
  EXPECT_EQ(report.ignored.size(), 3u);
  EXPECT_TRUE(at::equal(body->named_parameters()["roberta.encoder.layer.1.output.dense.weight"],
                        src->named_parameters()["roberta.encoder.layer.1.output.dense.weight"]));
}

TEST(HfLoadTest, BertNamesAndAbsolutePositions) {
  const auto cfg = tiny_roberta_config("BertForSequenceClassification");
  const auto info = parse_hf_config(cfg, "c");
  EXPECT_EQ(info.family, "bert");
  EXPECT_EQ(info.config.positions, "absolute");
  EXPECT_EQ(info.config.type_vocab_size, 2);
  EXPECT_EQ(info.config.layer_norm_eps, 1e-12);
  auto src = random_model(info, "classification", 3, 4);
  TempDir dir("hf_bert");
  const auto state = hf_state(*src, /*bert=*/true);
  EXPECT_TRUE(state.count("bert.pooler.dense.weight"));
  EXPECT_TRUE(state.count("classifier.weight"));
  EXPECT_TRUE(state.count("bert.embeddings.token_type_embeddings.weight"));
  write_dir(dir, cfg, state);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(6);
  auto m = load_hf_model(dir.path.string(), "classification", 0, gen);
  for (const auto& p : src->named_parameters()) EXPECT_TRUE(at::equal(m->named_parameters()[p.key()], p.value())) << p.key();
  EXPECT_EQ(hf_parameter_name("roberta.encoder.layer.0.attention.self.query.lora_A.weight", "bert"),
            "bert.encoder.layer.0.attention.self.query.lora_A.weight");
  EXPECT_EQ(lorascope_parameter_name("classifier.bias", "bert"), "classifier.out_proj.bias");

  // BERT's positions are 0..T-1: a RoBERTa-style model (positions pad + 1 + i = 1 + i here, pad 0)
  // whose position table is BERT's shifted down by one row gives the same logits.
  auto rcfg = info.config;
  rcfg.positions = "padding_offset";
  auto g2 = at::make_generator<at::CPUGeneratorImpl>(7);
  auto roberta = make_model(rcfg, "classification", 3, g2);
  at::NoGradGuard ng;
  for (auto& p : roberta->named_parameters()) p.value().copy_(m->named_parameters()[p.key()]);
  auto pos = roberta->named_parameters()["roberta.embeddings.position_embeddings.weight"];
  pos.narrow(0, 1, 39).copy_(m->named_parameters()["roberta.embeddings.position_embeddings.weight"].narrow(0, 0, 39));
  m->eval();
  roberta->eval();
  const auto ids = ids_for(60);
  const auto a = m->forward(ids, {}), b = roberta->forward(ids, {});
  EXPECT_LT((a - b).abs().max().item<double>(), 1e-5);
  EXPECT_TRUE(at::equal(a, src->forward(ids, {})));
}

// The masked-LM head (RobertaForMaskedLM / BertForMaskedLM): loaded under HF's names (BERT's
// cls.predictions.*) and computed as LayerNorm(gelu(dense(h))) E^T + bias with the decoder tied
// to the word embeddings, written out here from the body's output.
TEST(HfLoadTest, MaskedLmHeadLoadsAndMatchesTheFormula) {
  for (const std::string arch : {"RobertaForMaskedLM", "BertForMaskedLM"}) {
    const bool bert = arch == "BertForMaskedLM";
    const auto cfg = tiny_roberta_config(arch);
    const auto info = parse_hf_config(cfg, "c");
    auto src = random_model(info, "masked_lm", 0, 8);
    EXPECT_EQ(src->head_module(), "lm_head");
    auto state = hf_state(*src);
    if (bert) {
      std::map<std::string, at::Tensor> renamed;
      for (const auto& [n, t] : state) {
        std::string hf = n.rfind("roberta.", 0) == 0 ? "bert." + n.substr(8) : n;
        if (n.rfind("lm_head.dense.", 0) == 0) hf = "cls.predictions.transform.dense." + n.substr(14);
        if (n.rfind("lm_head.layer_norm.", 0) == 0) hf = "cls.predictions.transform.LayerNorm." + n.substr(19);
        if (n == "lm_head.bias") hf = "cls.predictions.bias";
        renamed[hf] = t;
      }
      state = renamed;
      EXPECT_TRUE(state.count("cls.predictions.transform.LayerNorm.weight"));
    }
    TempDir dir(bert ? "hf_bert_mlm" : "hf_roberta_mlm_head");
    write_dir(dir, cfg, state);
    auto gen = at::make_generator<at::CPUGeneratorImpl>(9);
    HfLoadReport report;
    auto m = load_hf_model(dir.path.string(), "masked_lm", 0, gen, &report);
    EXPECT_TRUE(report.fresh.empty()) << arch;
    EXPECT_TRUE(report.ignored.empty()) << arch;
    m->eval();
    at::NoGradGuard ng;
    const auto ids = ids_for(60);
    auto mask = at::ones_like(ids);
    mask[1].narrow(0, 6, 3).fill_(0);
    const auto logits = m->forward(ids, mask);
    ASSERT_EQ(logits.sizes(), (std::vector<int64_t>{2, 9, 60}));
    EXPECT_TRUE(at::equal(logits, src->forward(ids, mask))) << arch;
    auto& r = dynamic_cast<RobertaSequenceModel&>(*m);
    const auto h = r.roberta->forward(ids, mask).to(at::kDouble);
    auto p = m->named_parameters();
    const auto d = [&](const std::string& n) { return p[n].to(at::kDouble); };
    auto x = at::matmul(h, d("lm_head.dense.weight").t()) + d("lm_head.dense.bias");
    x = 0.5 * x * (1 + at::erf(x / std::sqrt(2.0)));  // exact GELU
    const auto mu = x.mean(-1, true), var = (x - mu).pow(2).mean(-1, true);
    x = (x - mu) / at::sqrt(var + info.config.layer_norm_eps) * d("lm_head.layer_norm.weight") +
        d("lm_head.layer_norm.bias");
    const auto expected = at::matmul(x, d("roberta.embeddings.word_embeddings.weight").t()) + d("lm_head.bias");
    EXPECT_LT((logits.to(at::kDouble) - expected).abs().max().item<double>(),
              1e-5 * expected.abs().max().item<double>()) << arch;
  }
  // An encoder body has no masked-LM head to load: an error naming the missing tensor.
  const auto body_cfg = tiny_roberta_config("RobertaModel");
  auto body = random_model(parse_hf_config(body_cfg, "c"), "classification", 2, 3);
  auto state = hf_state(*body);
  for (auto it = state.begin(); it != state.end();) it = it->first.rfind("classifier.", 0) == 0 ? state.erase(it) : ++it;
  TempDir dir("hf_roberta_body_mlm");
  write_dir(dir, body_cfg, state);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1);
  const auto e = error_of([&] { load_hf_model(dir.path.string(), "masked_lm", 0, gen); });
  EXPECT_NE(e.find("missing tensor \"lm_head."), std::string::npos) << e;
}

}  // namespace
}  // namespace lorascope
