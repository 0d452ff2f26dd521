// MiniLM (all-MiniLM-L6-v2) as lorascope loads it: a BertModel checkpoint with
// sentence-transformers' modules.json (mean pooling, Normalize), its pooler, the classification
// head on the pooled output, and the errors for a missing or damaged fetched model. The golden
// files (tests/golden/make_minilm.py) hold a tiny random BERT of the same layout and what
// transformers computes with it.
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/grad_mode.h>  // at::NoGradGuard (not in <ATen/ATen.h> from LibTorch 2 on)
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "data_fixtures.h"
#include "error_of.h"
#include "model_fixtures.h"
#include "models/hf_checkpoint.h"
#include "models/lora.h"
#include "models/peft_adapter.h"
#include "models/roberta.h"
#include "models/safetensors.h"
#include "models/sentence_pooling.h"

namespace lorascope {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const fs::path kGolden = fs::path(LORASCOPE_SOURCE_DIR) / "tests" / "golden" / "minilm";
const std::string kModel = (kGolden / "model").string();

// max over rows of ||a_i - b_i|| / ||b_i|| (rows: the last dimension), in float64.
double row_rel(const at::Tensor& a, const at::Tensor& b) {
  const auto A = a.to(at::kDouble).reshape({-1, a.size(-1)}), B = b.to(at::kDouble).reshape({-1, b.size(-1)});
  return ((A - B).norm(2, {1}) / B.norm(2, {1}).clamp_min(1e-30)).max().item<double>();
}

std::pair<at::Tensor, at::Tensor> golden_ids() {
  std::ifstream in(kGolden / "ids.json");
  const json j = json::parse(in);
  const auto rows = [&](const char* key) {
    std::vector<int64_t> flat;
    for (const auto& r : j.at(key)) {
      for (const auto& v : r) flat.push_back(v.get<int64_t>());
    }
    const auto B = static_cast<int64_t>(j.at(key).size());
    return at::tensor(flat, at::kLong).view({B, -1});
  };
  return {rows("input_ids"), rows("attention_mask")};
}

std::shared_ptr<RobertaSequenceModel> load_encoder(const std::string& dir, const std::string& pooling = "",
                                                   int normalize = -1, HfLoadReport* report = nullptr,
                                                   int64_t labels = 3) {
  auto info = read_hf_config(dir);
  if (!pooling.empty()) info.config.pooling = pooling;
  if (normalize >= 0) info.config.normalize_pooled = normalize == 1;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  auto m = std::dynamic_pointer_cast<RobertaSequenceModel>(load_hf_model(dir, info, "classification", labels, gen, report));
  m->eval();
  return m;
}

// ---------------------------------------------------------------------------------------------

TEST(SentencePoolingTest, MeanPoolMatchesTheFloat64Formula) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1);
  const auto h = at::randn({4, 5, 3}, gen);  // (B, T, C)
  // Right padding, none, a hole (a mask need not be a prefix), no token at all.
  const auto mask = at::tensor(std::vector<int64_t>{1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 0, 1, 1, 0, 0, 0, 0, 0, 0}, at::kLong)
                        .view({4, 5});
  const auto got = mean_pool(h, mask);
  ASSERT_EQ(got.sizes(), (std::vector<int64_t>{4, 3}));
  const auto hd = h.to(at::kDouble);
  for (int64_t b = 0; b < 4; ++b) {
    for (int64_t c = 0; c < 3; ++c) {
      double sum = 0, count = 0;
      for (int64_t t = 0; t < 5; ++t) {
        if (mask[b][t].item<int64_t>() != 0) sum += hd[b][t][c].item<double>(), count += 1;
      }
      const double want = sum / std::max(count, 1e-9);  // sentence-transformers' clamp(min=1e-9)
      EXPECT_NEAR(got[b][c].item<double>(), want, 1e-6 * (1 + std::abs(want))) << b << "," << c;
    }
  }
  EXPECT_TRUE(at::equal(got[3], at::zeros({3})));  // no tokens: zeros, not NaN
  // No mask = every token; a bool mask = the same as 0/1 integers.
  EXPECT_TRUE(at::allclose(mean_pool(h, {}), h.mean(1)));
  EXPECT_TRUE(at::equal(mean_pool(h, mask.to(at::kBool)), got));
  EXPECT_TRUE(at::equal(pool_tokens(h, mask, "cls"), h.select(1, 0)));
  EXPECT_TRUE(at::equal(pool_tokens(h, mask, "mean"), got));
  EXPECT_NE(error_of([&] { pool_tokens(h, mask, "max"); }).find("expected \"cls\" or \"mean\", got \"max\""),
            std::string::npos);
}

TEST(SentencePoolingTest, L2NormalizeMatchesTheFormula) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(2);
  auto x = at::randn({3, 6}, gen) * 5;
  x[2].zero_();
  const auto y = l2_normalize(x);
  for (int64_t b = 0; b < 3; ++b) {
    double norm = 0;
    for (int64_t c = 0; c < 6; ++c) norm += std::pow(x[b][c].item<double>(), 2);
    norm = std::max(std::sqrt(norm), 1e-12);  // F.normalize's eps
    for (int64_t c = 0; c < 6; ++c) EXPECT_NEAR(y[b][c].item<double>(), x[b][c].item<double>() / norm, 1e-7);
  }
  EXPECT_NEAR(y[0].norm().item<double>(), 1.0, 1e-6);
  EXPECT_TRUE(at::equal(y[2], at::zeros({6})));
}

// ---------------------------------------------------------------------------------------------

TEST(MiniLmConfigTest, ModulesJsonSetsPoolingAndNormalize) {
  const auto info = read_hf_config(kModel);
  EXPECT_EQ(info.architecture, "BertModel");
  EXPECT_EQ(info.family, "bert");
  EXPECT_EQ(info.config.pooling, "mean");
  EXPECT_TRUE(info.config.normalize_pooled);
  EXPECT_EQ(info.num_labels, 0);
  // Without modules.json: HF's own head (the pooler), as before.
  TempDir dir("minilm_plain");
  fs::copy(kModel, dir.path, fs::copy_options::recursive);
  fs::remove(dir.path / "modules.json");
  const auto plain = read_hf_config(dir.path.string());
  EXPECT_EQ(plain.config.pooling, "pooler");
  EXPECT_FALSE(plain.config.normalize_pooled);
  // cls pooling, no Normalize module.
  dir.write("modules.json", R"([{"type": "sentence_transformers.models.Transformer", "path": ""},
                                {"type": "sentence_transformers.models.Pooling", "path": "1_Pooling"}])");
  dir.write("1_Pooling/config.json", R"({"word_embedding_dimension": 32, "pooling_mode_cls_token": true,
                                         "pooling_mode_mean_tokens": false})");
  const auto cls = read_hf_config(dir.path.string());
  EXPECT_EQ(cls.config.pooling, "cls");
  EXPECT_FALSE(cls.config.normalize_pooled);
}

TEST(MiniLmConfigTest, UnsupportedModulesNameTheFileAndKey) {
  TempDir dir("minilm_modules");
  fs::copy(kModel, dir.path, fs::copy_options::recursive);
  const std::string modules = (dir.path / "modules.json").string();
  const std::string pooling = (dir.path / "1_Pooling" / "config.json").string();
  const auto error = [&](const std::string& mods, const std::string& pool) {
    dir.write("modules.json", mods);
    dir.write("1_Pooling/config.json", pool);
    return error_of([&] { read_hf_config(dir.path.string()); });
  };
  const std::string tp = R"({"type": "sentence_transformers.models.Transformer", "path": ""},
                            {"type": "sentence_transformers.models.Pooling", "path": "1_Pooling"})";
  const std::string mean = R"({"word_embedding_dimension": 32, "pooling_mode_mean_tokens": true})";
  EXPECT_EQ(error("[" + tp + R"(, {"type": "sentence_transformers.models.Dense", "path": "2_Dense"}])", mean),
            modules + ": module 2: type: unsupported \"sentence_transformers.models.Dense\" (lorascope implements "
                      "Transformer -> Pooling -> Normalize)");
  EXPECT_EQ(error("[" + tp + "]", R"({"word_embedding_dimension": 32, "pooling_mode_max_tokens": true})"),
            pooling + ": pooling_mode_max_tokens: unsupported (lorascope implements pooling_mode_mean_tokens and "
                      "pooling_mode_cls_token)");
  EXPECT_EQ(error("[" + tp + "]", R"({"pooling_mode_mean_tokens": true, "pooling_mode_cls_token": true})"),
            pooling + ": pooling_mode_*: expected exactly one mode set (lorascope pools one way), got 2");
  EXPECT_EQ(error("[" + tp + "]", R"({"word_embedding_dimension": 384, "pooling_mode_mean_tokens": true})"),
            pooling + ": word_embedding_dimension: expected hidden_size of config.json (32), got 384");
  EXPECT_EQ(error(R"([{"type": "sentence_transformers.models.Pooling", "path": "../x"}])", mean),
            modules + ": module 0: path: expected a folder inside " + dir.path.string() + ", got \"../x\"");
  EXPECT_EQ(error(R"([{"type": "sentence_transformers.models.Normalize"}])", mean),
            modules + ": module 0: sentence_transformers.models.Normalize: expected after the Pooling module");
  EXPECT_EQ(error("{", mean).rfind(modules + ": not valid JSON", 0), 0u);
  EXPECT_EQ(error("[" + tp + "]", "[1]"), pooling + ": expected a JSON object");
}

TEST(MiniLmConfigTest, PoolingKeysAreChecked) {
  auto c = fixtures::tiny_config("roberta");
  c.pooling = "mean";
  c.normalize_pooled = true;
  const auto back = TransformerConfig::from_json(c.to_json(), "m");
  EXPECT_EQ(back.pooling, "mean");
  EXPECT_TRUE(back.normalize_pooled);
  auto j = c.to_json();
  j["pooling"] = "max";
  EXPECT_EQ(error_of([&] { TransformerConfig::from_json(j, "m"); }),
            "m: pooling: expected \"pooler\" or \"cls\" or \"mean\", got \"max\"");
  j["pooling"] = "cls";
  j["normalize_pooled"] = 1;
  EXPECT_EQ(error_of([&] { TransformerConfig::from_json(j, "m"); }), "m: normalize_pooled: expected true or false, got 1");
  auto l = fixtures::tiny_config("llama").to_json();
  l["pooling"] = "mean";
  EXPECT_EQ(error_of([&] { TransformerConfig::from_json(l, "m"); }),
            "m: pooling: expected the default for llama (its classifier reads the last token), got \"mean\"");
}

// ---------------------------------------------------------------------------------------------

TEST(MiniLmLoadTest, GoldenHiddenStatesAndEmbeddingsMatchTransformers) {
  const auto expected = load_safetensors((kGolden / "expected.safetensors").string());
  const auto [ids, mask] = golden_ids();
  at::NoGradGuard ng;
  auto m = load_encoder(kModel);  // the checkpoint's own pooling: mean + Normalize
  const auto h = m->roberta->forward(ids, mask);
  const auto keep = mask.to(at::kBool);
  // Hidden states of real tokens (padding rows are not part of any output).
  const double e_h = row_rel(h.index({keep}), expected.at("last_hidden_state").index({keep}));
  const double e_emb = row_rel(m->pooled(h, mask), expected.at("embeddings"));
  m->roberta->config.normalize_pooled = false;
  const double e_mean = row_rel(m->pooled(h, mask), expected.at("mean"));
  m->roberta->config.pooling = "cls";
  const double e_cls = row_rel(m->pooled(h, mask), expected.at("cls"));
  auto p = load_encoder(kModel, "pooler", 0);
  const double e_pool = row_rel(p->pooled(h, mask), expected.at("pooler_output"));
  std::printf("golden minilm: relative errors hidden %.2e, embeddings %.2e, mean %.2e, cls %.2e, pooler %.2e\n", e_h,
              e_emb, e_mean, e_cls, e_pool);
  for (double e : {e_h, e_emb, e_mean, e_cls, e_pool}) EXPECT_LT(e, 1e-5);
}

TEST(MiniLmLoadTest, PaddingDoesNotChangeASentencesEmbedding) {
  const auto [ids, mask] = golden_ids();
  at::NoGradGuard ng;
  auto m = load_encoder(kModel);
  const auto batch = m->pooled(m->roberta->forward(ids, mask), mask);
  for (int64_t b = 0; b < ids.size(0); ++b) {
    const int64_t len = mask[b].sum().item<int64_t>();
    const auto one = ids[b].narrow(0, 0, len).unsqueeze(0);
    const auto alone = m->pooled(m->roberta->forward(one, {}), {});  // no padding, no mask
    EXPECT_LT(row_rel(batch[b].unsqueeze(0), alone), 1e-5) << "sentence " << b;
  }
}

TEST(MiniLmLoadTest, MeanPooledHeadIsFreshAndReadsTheNormalizedMean) {
  HfLoadReport report;
  auto m = load_encoder(kModel, "", -1, &report);
  // BertModel has no classifier; with mean pooling the head is out_proj alone, the pooler unused.
  EXPECT_EQ(report.fresh, (std::vector<std::string>{"classifier.out_proj.weight", "classifier.out_proj.bias"}));
  EXPECT_EQ(report.ignored, (std::vector<std::string>{"pooler.dense.bias", "pooler.dense.weight"}));
  EXPECT_EQ(m->named_parameters().find("classifier.dense.weight"), nullptr);
  const auto [ids, mask] = golden_ids();
  at::NoGradGuard ng;
  const auto logits = m->forward(ids, mask);  // (B, 3)
  // Direct float64 formula from the body's hidden states: W (h-mean / ||h-mean||) + b.
  const auto h = m->roberta->forward(ids, mask).to(at::kDouble);
  const auto md = mask.to(at::kDouble).unsqueeze(-1);
  const auto mean = (h * md).sum(1) / md.sum(1);
  const auto e = mean / mean.norm(2, {1}, true);
  const auto W = m->classifier_out_proj->named_parameters()["weight"].to(at::kDouble);
  const auto bias = m->classifier_out_proj->named_parameters()["bias"].to(at::kDouble);
  const auto want = at::matmul(e, W.t()) + bias;
  EXPECT_LT((logits.to(at::kDouble) - want).abs().max().item<double>(), 1e-5 * want.abs().max().item<double>());
}

TEST(MiniLmLoadTest, PoolerPoolingLoadsBertsPooler) {
  HfLoadReport report;
  auto m = load_encoder(kModel, "pooler", 0, &report);
  EXPECT_EQ(report.fresh, (std::vector<std::string>{"classifier.out_proj.weight", "classifier.out_proj.bias"}));
  EXPECT_TRUE(report.ignored.empty());
  const auto state = load_safetensors(kModel + "/model.safetensors");
  EXPECT_TRUE(at::equal(m->classifier_dense->named_parameters()["weight"], state.at("pooler.dense.weight")));
  // A BertModel saved without its pooler (add_pooling_layer=False): the pooler is fresh too.
  TempDir dir("minilm_nopooler");
  fs::copy(kModel, dir.path, fs::copy_options::recursive);
  auto trimmed = state;
  trimmed.erase("pooler.dense.weight");
  trimmed.erase("pooler.dense.bias");
  save_safetensors(trimmed, (dir.path / "model.safetensors").string());
  auto fresh = load_encoder(dir.path.string(), "pooler", 0, &report);
  EXPECT_EQ(report.fresh.size(), 4u);
}

// BERT's segment ids reach the embeddings: all-0 types are the default, type 1 adds row 1 of
// token_type_embeddings (the same hidden states as a model whose row 0 holds row 1's values).
TEST(MiniLmLoadTest, TokenTypeIdsSelectTheirEmbeddingRow) {
  auto m = load_encoder(kModel);
  const auto [ids, mask] = golden_ids();
  at::NoGradGuard ng;
  const auto h = m->roberta->forward(ids, mask);
  EXPECT_TRUE(at::equal(m->roberta->forward(ids, mask, at::zeros_like(ids)), h));
  const auto ones = at::ones_like(ids);
  const auto h1 = m->roberta->forward(ids, mask, ones);
  const auto keep = mask.to(at::kBool);
  EXPECT_GT((h1 - h).index({keep}).abs().max().item<double>(), 1e-3);
  auto swapped = load_encoder(kModel);
  auto& w = swapped->roberta->token_type_embeddings->weight;
  w[0].copy_(w[1]);
  EXPECT_LT(row_rel(h1.index({keep}), swapped->roberta->forward(ids, mask).index({keep})), 1e-6);
  // Through the classifier interface the trainer calls: undefined types = the two-argument forward.
  auto types = at::zeros_like(ids);
  types.slice(1, 4) = 1;
  const auto logits_mixed = m->forward(ids, mask, types), logits_zero = m->forward(ids, mask, at::Tensor());
  EXPECT_TRUE(at::equal(logits_zero, m->forward(ids, mask)));
  EXPECT_GT((logits_mixed - logits_zero).abs().max().item<double>(), 0);
  EXPECT_THROW(m->forward(ids, mask, at::zeros({2, 3}, at::kLong)), std::invalid_argument);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1);
  auto llama = make_model(fixtures::tiny_config("llama"), "classification", 2, gen);
  const auto lids = at::ones({1, 4}, at::kLong);
  EXPECT_EQ(error_of([&] { llama->forward(lids, {}, at::zeros_like(lids)); }),
            "llama: token_type_ids: this architecture has no token types");
  EXPECT_NO_THROW(llama->forward(lids, {}, at::Tensor()));
}

// Fine-tuning MiniLM: LoRA on query / value, the head trained in full. The head's gradient is
// the softmax-regression formula (p - onehot)^T e / B on the pooled embedding e.
TEST(MiniLmLoadTest, LoraAndHeadTrainOnThePooledEmbedding) {
  auto m = load_encoder(kModel, "", -1, nullptr, 2);
  LoraConfig lora;
  lora.targets = {"query", "value"};
  lora.modules_to_save = {"classifier"};
  auto gen = at::make_generator<at::CPUGeneratorImpl>(9);
  const auto adapters = attach_lora(*m, lora, gen);
  ASSERT_EQ(adapters.size(), 4u);  // 2 layers x {query, value}
  EXPECT_EQ(adapters[0].name, "roberta.encoder.layer.0.attention.self.query");
  const auto [ids, mask] = golden_ids();
  const auto labels = at::tensor(std::vector<int64_t>{0, 1, 0, 1, 1, 0}, at::kLong);
  const auto logits = m->forward(ids, mask);
  at::cross_entropy_loss(logits, labels).backward();
  at::Tensor e;
  {
    at::NoGradGuard ng;
    e = m->pooled(m->roberta->forward(ids, mask), mask).to(at::kDouble);  // B = 0: adapters change nothing yet
  }
  const auto p = at::softmax(logits.detach().to(at::kDouble), 1);
  const auto onehot = at::one_hot(labels, 2).to(at::kDouble);
  const auto gW = at::matmul((p - onehot).t(), e) / 6.0;
  const auto W = m->classifier_out_proj->named_parameters()["weight"];
  EXPECT_LT((W.grad().to(at::kDouble) - gW).abs().max().item<double>(), 1e-6);
  for (const auto& a : adapters) {
    EXPECT_GT(a.B.grad().abs().max().item<double>(), 0) << a.name;  // B = 0 at init: only B moves first
    EXPECT_EQ(a.A.grad().abs().max().item<double>(), 0) << a.name;
  }
  for (const auto& p2 : m->named_parameters()) {
    const bool trainable = p2.key().find(".lora_") != std::string::npos || p2.key().rfind("classifier.", 0) == 0;
    EXPECT_EQ(p2.value().requires_grad(), trainable) << p2.key();
  }
}

// PEFT's SEQ_CLS models pool through BERT's pooler: an export of a head on mean / cls pooling
// says so in README.md; a pooler head's export has none (and a stale one is removed).
TEST(MiniLmLoadTest, PeftExportOfAPooledHeadCarriesAReadme) {
  TempDir dir("minilm_export");
  const auto readme = dir.path / "adapter" / "README.md";
  for (const char* pooling : {"mean", "pooler"}) {
    auto m = load_encoder(kModel, pooling, -1, nullptr, 2);
    LoraConfig lora;
    lora.targets = {"query", "value"};
    lora.modules_to_save = {"classifier"};
    auto gen = at::make_generator<at::CPUGeneratorImpl>(1);
    attach_lora(*m, lora, gen);
    save_peft_adapter(*m, lora, (dir.path / "adapter").string());
    if (std::string(pooling) == "mean") {
      ASSERT_TRUE(fs::exists(readme));
      const auto text = read_all(readme);
      EXPECT_NE(text.find("Not a drop-in transformers / PEFT sequence classifier"), std::string::npos) << text;
      EXPECT_NE(text.find("mask-weighted mean"), std::string::npos) << text;
      EXPECT_NE(text.find("L2-normalized"), std::string::npos) << text;
    } else {
      EXPECT_FALSE(fs::exists(readme));
    }
  }
}

// ---------------------------------------------------------------------------------------------

struct Run {
  int code;
  std::string err;
};

Run lorascope(const std::string& args, const fs::path& dir) {
  const auto err_path = dir / "stderr.txt";
  const std::string cmd = std::string(LORASCOPE_BINARY) + " --threads 1 " + args + " >/dev/null 2>" + err_path.string();
  const int status = std::system(cmd.c_str());
  return {WEXITSTATUS(status), read_all(err_path)};
}

TEST(MiniLmCliTest, EmbedWritesWhatTransformersComputes) {
  TempDir dir("minilm_embed");
  const auto expected = load_safetensors((kGolden / "expected.safetensors").string());
  const auto [ids, mask] = golden_ids();
  const auto keep = mask.to(at::kBool);
  const std::string common = "hf embed --model " + kModel + " --ids " + (kGolden / "ids.json").string() + " --out ";
  const auto out = (dir.path / "e.safetensors").string();
  auto r = lorascope(common + out, dir.path);
  ASSERT_EQ(r.code, 0) << r.err;
  auto got = load_safetensors(out);
  EXPECT_LT(row_rel(got.at("embeddings"), expected.at("embeddings")), 1e-5);
  EXPECT_LT(row_rel(got.at("last_hidden_state").index({keep}), expected.at("last_hidden_state").index({keep})), 1e-5);
  r = lorascope(common + out + " --pooling pooler --no-normalize", dir.path);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_LT(row_rel(load_safetensors(out).at("embeddings"), expected.at("pooler_output")), 1e-5);
  r = lorascope(common + out + " --pooling mean --no-normalize", dir.path);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_LT(row_rel(load_safetensors(out).at("embeddings"), expected.at("mean")), 1e-5);
}

// A fetched model that is missing or damaged: one line naming what, and the command that
// fetches it, exit 2, nothing written; the same line from hf embed, hf logits and finetune.
TEST(MiniLmCliTest, MissingOrDamagedModelNamesTheFetchCommand) {
  TempDir dir("minilm_bad");
  const auto model = dir.path / "models" / "all-MiniLM-L6-v2";
  const auto out = dir.path / "e.safetensors";
  const std::string fetch = "; bash scripts/fetch_model.sh fetches it";
  const auto text = dir.path / "text.txt";
  std::ofstream(text) << "One paragraph.\n\nAnother paragraph.\n";
  const auto attempt = [&](const std::function<void()>& damage) {
    fs::remove_all(dir.path / "models");
    fs::create_directories(model.parent_path());
    fs::copy(kModel, model, fs::copy_options::recursive);
    damage();
    std::string first;
    const std::string ids = " --ids " + (kGolden / "ids.json").string() + " --out " + out.string();
    // finetune checks the base before it writes anything (its data: a small text file).
    const std::string finetune = "finetune --set data.kind=text --set data.path=" + text.string() +
                                 " --out " + out.string();
    for (const std::string& cmd : {"hf embed" + ids, "hf logits --head classification" + ids, finetune}) {
      const auto r = lorascope(cmd + " --model " + model.string(), dir.path);
      EXPECT_EQ(r.code, 2) << cmd << ": " << r.err;
      EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
      EXPECT_FALSE(fs::exists(out)) << cmd;
      const std::string line = r.err.empty() ? r.err : r.err.substr(0, r.err.size() - 1);
      if (first.empty()) first = line;
      EXPECT_EQ(line, first) << cmd;  // every command that reads the model says the same
    }
    return first;
  };
  const std::string m = model.string();
  EXPECT_EQ(attempt([&] { fs::remove_all(model); }), "lorascope: " + m + ": model directory not found" + fetch);
  EXPECT_EQ(attempt([&] { fs::remove(model / "model.safetensors"); }),
            "lorascope: " + m + "/model.safetensors: missing" + fetch);
  EXPECT_EQ(attempt([&] { fs::remove(model / "tokenizer.json"); }), "lorascope: " + m + "/tokenizer.json: missing" + fetch);
  const auto truncated = attempt([&] { fs::resize_file(model / "model.safetensors", 50000); });
  EXPECT_EQ(truncated.rfind("lorascope: " + m + "/model.safetensors: ", 0), 0u) << truncated;
  EXPECT_NE(truncated.find(fetch), std::string::npos) << truncated;
  const auto arch = attempt([&] {
    auto cfg = json::parse(read_all(model / "config.json"));
    cfg["architectures"] = {"GPT2LMHeadModel"};
    std::ofstream(model / "config.json") << cfg.dump();
  });
  EXPECT_EQ(arch.rfind("lorascope: " + m + "/config.json: architectures: unsupported architecture \"GPT2LMHeadModel\"", 0),
            0u) << arch;
  EXPECT_NE(arch.find(fetch), std::string::npos) << arch;
  const auto modules = attempt([&] { std::ofstream(model / "modules.json") << "[1]"; });
  EXPECT_EQ(modules, "lorascope: " + m + "/modules.json: module 0: type: expected a string such as "
                     "\"sentence_transformers.models.Pooling\"" + fetch);
  // Another directory is not a fetched model: the same error, without the hint.
  EXPECT_TRUE(fetch_command_for(dir.path.string()).empty());
  EXPECT_EQ(fetch_command_for(m + "/"), "bash scripts/fetch_model.sh");
  EXPECT_TRUE(is_hf_checkpoint_dir(m));  // even when damaged: reported as a damaged checkpoint
  const auto other = dir.path / "other";
  fs::copy(kModel, other, fs::copy_options::recursive);
  fs::remove(other / "model.safetensors");
  EXPECT_FALSE(is_hf_checkpoint_dir(other.string()));
  const auto e = error_of([&] { load_encoder(other.string()); });
  EXPECT_EQ(e.find("fetch_model"), std::string::npos) << e;
}

}  // namespace
}  // namespace lorascope
