// The transformers: HF parameter names, shapes, causality, padding invariance, grouped KV
// heads, and the layers against float64 formulas.
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>  // at::NoGradGuard (not in <ATen/ATen.h> from LibTorch 2 on)

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>

#include "models/llama.h"
#include "models/roberta.h"
#include "models/sequence_model.h"
#include "model_fixtures.h"
#include "models/transformer_config.h"
#include "models/transformer_layers.h"

namespace lorascope {
namespace {

TransformerConfig tiny(const std::string& arch) { return fixtures::tiny_config(arch); }

std::shared_ptr<SequenceModel> build(const TransformerConfig& c, const std::string& head, int64_t labels,
                                     uint64_t seed, at::ScalarType dtype = at::kDouble) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto m = make_model(c, head, labels, gen);
  m->to(dtype);
  m->eval();
  return m;
}

double max_diff(const at::Tensor& a, const at::Tensor& b) { return (a - b).abs().max().item<double>(); }

std::vector<std::string> param_names(torch::nn::Module& m) {
  std::vector<std::string> out;
  for (const auto& p : m.named_parameters()) out.push_back(p.key());
  return out;
}

std::vector<int64_t> ints(const at::Tensor& t) {
  const auto c = t.to(at::kLong).contiguous();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

// Tokens in [2, vocab) so that none is a pad id.
at::Tensor random_ids(int64_t B, int64_t T, int64_t vocab, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  return at::randint(2, vocab, {B, T}, gen, at::kLong);
}

TEST(ModelConfigTest, JsonRoundTripAndErrorsNameTheKey) {
  auto c = tiny("llama");
  c.tie_embeddings = false;
  const auto back = TransformerConfig::from_json(c.to_json(), "cfg");
  EXPECT_EQ(back.to_json(), c.to_json());

  const auto base = c.to_json();
  const std::vector<std::pair<nlohmann::json, std::string>> cases = {
      {{{"hidden_size", nullptr}}, "cfg: hidden_size: missing"},
      {{{"hidden_size", "16"}}, "cfg: hidden_size: expected an integer >= 1, got \"16\""},
      {{{"num_heads", 3}}, "cfg: num_heads: expected a divisor of hidden_size (16), got 3"},
      {{{"num_kv_heads", 3}}, "cfg: num_kv_heads: expected a divisor of num_heads (4), got 3"},
      {{{"arch", "gpt"}}, "cfg: arch: expected \"llama\" or \"roberta\", got \"gpt\""},
      {{{"rms_norm_eps", -1}}, "cfg: rms_norm_eps: expected a positive number, got -1"},
      {{{"tie_embeddings", 1}}, "cfg: tie_embeddings: expected true or false, got 1"},
      {{{"pad_token_id", 50}}, "cfg: pad_token_id: expected an id below vocab_size (50), got 50"},
      {{{"num_heads", 16}, {"num_kv_heads", 16}}, "cfg: num_heads: expected an even head_dim"},
      {{{"hidden_sise", 16}}, "cfg: hidden_sise: unknown key"},
  };
  for (const auto& [patch, message] : cases) {
    auto j = base;
    for (auto it = patch.begin(); it != patch.end(); ++it) {
      if (it.value().is_null()) j.erase(it.key()); else j[it.key()] = it.value();
    }
    try {
      TransformerConfig::from_json(j, "cfg");
      ADD_FAILURE() << "no error for " << patch.dump();
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << e.what();
    }
  }
  auto r = tiny("roberta").to_json();
  r["max_positions"] = 2;
  EXPECT_THROW(TransformerConfig::from_json(r, "cfg"), std::runtime_error);
  // Optional keys default; num_kv_heads follows num_heads; "_" keys are notes.
  const auto m = TransformerConfig::from_json({{"arch", "llama"}, {"vocab_size", 10}, {"hidden_size", 8},
                                               {"num_layers", 1}, {"num_heads", 2}, {"intermediate_size", 8},
                                               {"_note", "x"}}, "cfg");
  EXPECT_EQ(m.num_kv_heads, 2);
  EXPECT_EQ(m.rope_theta, 10000.0);
}

TEST(LlamaTest, ParameterNamesAreHuggingFaces) {
  const std::vector<std::string> per_layer = {
      "self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight",
      "self_attn.o_proj.weight", "mlp.gate_proj.weight",    "mlp.up_proj.weight",
      "mlp.down_proj.weight",    "input_layernorm.weight",  "post_attention_layernorm.weight"};
  const auto expected = [&](const std::string& head) {
    std::vector<std::string> names = {"model.embed_tokens.weight"};
    for (int i = 0; i < 2; ++i) {
      for (const auto& n : per_layer) names.push_back("model.layers." + std::to_string(i) + "." + n);
    }
    names.push_back("model.norm.weight");
    if (!head.empty()) names.push_back(head);
    return names;
  };
  auto c = tiny("llama");
  EXPECT_EQ(param_names(*build(c, "causal_lm", 0, 1)), expected(""));  // tied: no lm_head.weight
  EXPECT_EQ(param_names(*build(c, "classification", 3, 1)), expected("score.weight"));
  c.tie_embeddings = false;
  auto m = build(c, "causal_lm", 0, 1);
  EXPECT_EQ(param_names(*m), expected("lm_head.weight"));

  const std::map<std::string, std::vector<int64_t>> shapes = {
      {"model.embed_tokens.weight", {50, 16}},
      {"model.layers.1.self_attn.q_proj.weight", {16, 16}},
      {"model.layers.1.self_attn.k_proj.weight", {8, 16}},  // 2 KV heads of 4 dims
      {"model.layers.1.mlp.gate_proj.weight", {24, 16}},
      {"model.layers.1.mlp.down_proj.weight", {16, 24}},
      {"lm_head.weight", {50, 16}}};
  const auto params = m->named_parameters();
  for (const auto& [name, shape] : shapes) EXPECT_EQ(params[name].sizes().vec(), shape) << name;
}

TEST(RobertaTest, ParameterNamesAreHuggingFaces) {
  const std::vector<std::string> per_layer = {
      "attention.self.query.weight",     "attention.self.query.bias",     "attention.self.key.weight",
      "attention.self.key.bias",         "attention.self.value.weight",   "attention.self.value.bias",
      "attention.output.dense.weight",   "attention.output.dense.bias",   "attention.output.LayerNorm.weight",
      "attention.output.LayerNorm.bias", "intermediate.dense.weight",     "intermediate.dense.bias",
      "output.dense.weight",             "output.dense.bias",             "output.LayerNorm.weight",
      "output.LayerNorm.bias"};
  std::vector<std::string> expected = {
      "roberta.embeddings.word_embeddings.weight", "roberta.embeddings.position_embeddings.weight",
      "roberta.embeddings.token_type_embeddings.weight", "roberta.embeddings.LayerNorm.weight",
      "roberta.embeddings.LayerNorm.bias"};
  for (int i = 0; i < 2; ++i) {
    for (const auto& n : per_layer) expected.push_back("roberta.encoder.layer." + std::to_string(i) + "." + n);
  }
  for (const auto& n : {"classifier.dense.weight", "classifier.dense.bias", "classifier.out_proj.weight",
                        "classifier.out_proj.bias"}) {
    expected.push_back(n);
  }
  auto m = build(tiny("roberta"), "classification", 3, 1);
  EXPECT_EQ(param_names(*m), expected);
  const auto params = m->named_parameters();
  EXPECT_EQ(params["roberta.embeddings.position_embeddings.weight"].sizes().vec(), (std::vector<int64_t>{40, 16}));
  EXPECT_EQ(params["classifier.out_proj.weight"].sizes().vec(), (std::vector<int64_t>{3, 16}));
  EXPECT_EQ(m->head_module(), "classifier");
  EXPECT_THROW(build(tiny("roberta"), "causal_lm", 0, 1), std::invalid_argument);
}

TEST(ModelInitTest, LikeHuggingFaceAndSeeded) {
  auto a = build(tiny("roberta"), "classification", 2, 7, at::kFloat);
  auto b = build(tiny("roberta"), "classification", 2, 7, at::kFloat);
  const auto pb = b->named_parameters();
  for (const auto& p : a->named_parameters()) {
    const auto& name = p.key();
    const auto& w = p.value();
    EXPECT_TRUE(w.equal(pb[name])) << name;
    if (name.find("LayerNorm.weight") != std::string::npos) {
      EXPECT_TRUE(w.eq(1).all().item<bool>()) << name;
    } else if (name.size() > 5 && name.compare(name.size() - 5, 5, ".bias") == 0) {
      EXPECT_TRUE(w.eq(0).all().item<bool>()) << name;
    }
  }
  const auto word = pb["roberta.embeddings.word_embeddings.weight"];
  EXPECT_TRUE(word[1].eq(0).all().item<bool>());  // padding row
  EXPECT_NEAR(word.narrow(0, 2, 48).std().item<double>(), 0.02, 0.002);
  EXPECT_NEAR(pb["roberta.encoder.layer.0.intermediate.dense.weight"].std().item<double>(), 0.02, 0.003);
  auto c = build(tiny("roberta"), "classification", 2, 8, at::kFloat);
  EXPECT_FALSE(c->named_parameters()["classifier.dense.weight"].equal(pb["classifier.dense.weight"]));
}

TEST(LlamaTest, ForwardShapesAndCausality) {
  auto m = build(tiny("llama"), "causal_lm", 0, 2);
  const auto ids = random_ids(3, 9, 50, 1);
  const auto logits = m->forward(ids, at::ones_like(ids));
  EXPECT_EQ(logits.sizes().vec(), (std::vector<int64_t>{3, 9, 50}));
  EXPECT_EQ(build(tiny("llama"), "classification", 5, 2)->forward(ids, {}).sizes().vec(),
            (std::vector<int64_t>{3, 5}));
  for (int64_t t : {0, 4, 8}) {
    auto changed = ids.clone();
    changed.select(1, t).fill_(1);
    const auto other = m->forward(changed, at::ones_like(ids));
    if (t > 0) {
      EXPECT_LT(max_diff(other.narrow(1, 0, t), logits.narrow(1, 0, t)), 1e-12) << t;
    }
    EXPECT_GT(max_diff(other.select(1, t), logits.select(1, t)), 1e-6) << t;
  }
  EXPECT_THROW(m->forward(ids.to(at::kInt), {}), std::invalid_argument);
  EXPECT_THROW(m->forward(ids, at::ones({3, 8}, at::kLong)), std::invalid_argument);
}

TEST(LlamaTest, PaddingDoesNotChangeRealTokens) {
  const auto ids = random_ids(2, 7, 50, 3);
  auto padded = at::cat({ids, at::zeros({2, 4}, at::kLong)}, 1);       // pad id 0
  auto mask = at::cat({at::ones({2, 7}, at::kLong), at::zeros({2, 4}, at::kLong)}, 1);
  // Row 1 shorter still: its last 2 real tokens become padding too.
  padded[1].narrow(0, 5, 2).fill_(0);
  mask[1].narrow(0, 5, 2).fill_(0);
  auto lm = build(tiny("llama"), "causal_lm", 0, 4);
  const auto full = lm->forward(ids, {});
  const auto pad = lm->forward(padded, mask);
  EXPECT_LT(max_diff(pad[0].narrow(0, 0, 7), full[0]), 1e-12);
  EXPECT_LT(max_diff(pad[1].narrow(0, 0, 5), full[1].narrow(0, 0, 5)), 1e-12);

  auto cls = build(tiny("llama"), "classification", 3, 4);
  const auto row0 = cls->forward(ids.narrow(0, 0, 1), {});
  const auto row1 = cls->forward(ids.narrow(0, 1, 1).narrow(1, 0, 5), {});
  const auto both = cls->forward(padded, mask);  // pooled at positions 6 and 4
  EXPECT_LT(max_diff(both[0], row0[0]), 1e-12);
  EXPECT_LT(max_diff(both[1], row1[0]), 1e-12);
  EXPECT_EQ(ints(last_token_index(mask)), (std::vector<int64_t>{6, 4}));
}

TEST(RobertaTest, ForwardShapesAndPaddingInvariance) {
  auto m = build(tiny("roberta"), "classification", 3, 5);
  const auto ids = random_ids(2, 6, 50, 4);
  const auto logits = m->forward(ids, {});
  EXPECT_EQ(logits.sizes().vec(), (std::vector<int64_t>{2, 3}));
  const auto padded = at::cat({ids, at::ones({2, 3}, at::kLong)}, 1);  // pad id 1
  const auto mask = at::cat({at::ones({2, 6}, at::kLong), at::zeros({2, 3}, at::kLong)}, 1);
  EXPECT_LT(max_diff(m->forward(padded, mask), logits), 1e-12);
  // Position ids start after the pad id, padding sits at the pad id.
  EXPECT_EQ(ints(roberta_position_ids(mask.narrow(0, 0, 1), 1)),
            (std::vector<int64_t>{2, 3, 4, 5, 6, 7, 1, 1, 1}));
  // 40 positions hold T + pad + 1 <= 40, T = 38 at most.
  EXPECT_NO_THROW(m->forward(random_ids(1, 38, 50, 5), {}));
  EXPECT_THROW(m->forward(random_ids(1, 39, 50, 5), {}), std::invalid_argument);
}

TEST(LlamaTest, GroupedKvHeadsEqualExplicitRepeat) {
  auto c = tiny("llama");  // 4 query heads, 2 KV heads of 4 dims
  auto gqa = build(c, "causal_lm", 0, 6);
  c.num_kv_heads = 4;
  auto mha = build(c, "causal_lm", 0, 7);
  {
    at::NoGradGuard no_grad;
    auto dst = mha->named_parameters();
    for (const auto& p : gqa->named_parameters()) {
      auto w = p.value();
      if (p.key().find("k_proj") != std::string::npos || p.key().find("v_proj") != std::string::npos) {
        w = w.view({2, 1, 4, 16}).expand({2, 2, 4, 16}).reshape({16, 16});  // KV head j -> heads 2j, 2j+1
      }
      dst[p.key()].copy_(w);
    }
  }
  const auto ids = random_ids(2, 8, 50, 8);
  EXPECT_LT(max_diff(gqa->forward(ids, {}), mha->forward(ids, {})), 1e-12);
}

TEST(ModelLayersTest, RmsNormMatchesFormula) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(9);
  RMSNorm norm(6, 1e-6);
  norm.to(at::kDouble);
  {
    at::NoGradGuard no_grad;
    norm.weight.copy_(at::randn({6}, gen, at::kDouble));
  }
  const auto x = at::randn({3, 6}, gen, at::kDouble);
  const auto y = norm.forward(x);
  for (int64_t i = 0; i < 3; ++i) {
    double ms = 0;
    for (int64_t j = 0; j < 6; ++j) ms += x[i][j].item<double>() * x[i][j].item<double>() / 6;
    for (int64_t j = 0; j < 6; ++j) {
      const double ref = norm.weight[j].item<double>() * x[i][j].item<double>() / std::sqrt(ms + 1e-6);
      EXPECT_NEAR(y[i][j].item<double>(), ref, 1e-14);
    }
  }
}

TEST(ModelLayersTest, RotaryMatchesFormula) {
  const int64_t T = 5, hd = 8;
  const double theta = 500.0;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(10);
  const auto x = at::randn({1, 2, T, hd}, gen, at::kDouble);  // (B, H, T, hd)
  const auto cs = rotary_cos_sin(T, hd, theta, x.options());
  const auto y = apply_rotary(x, cs.first, cs.second);
  // HF pairs dimension i with i + hd/2 and rotates the pair by t * theta^(-2i/hd).
  for (int64_t h = 0; h < 2; ++h) {
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t i = 0; i < hd / 2; ++i) {
        const double a = t * std::pow(theta, -2.0 * i / hd);
        const double x1 = x[0][h][t][i].item<double>(), x2 = x[0][h][t][i + hd / 2].item<double>();
        EXPECT_NEAR(y[0][h][t][i].item<double>(), x1 * std::cos(a) - x2 * std::sin(a), 1e-14);
        EXPECT_NEAR(y[0][h][t][i + hd / 2].item<double>(), x2 * std::cos(a) + x1 * std::sin(a), 1e-14);
      }
    }
  }
  EXPECT_THROW(rotary_cos_sin(T, 7, theta, x.options()), std::invalid_argument);
}

TEST(ModelLayersTest, FusedAttentionMatchesReference) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(11);
  auto mask01 = at::ones({2, 7}, at::kLong);
  mask01[1].narrow(0, 4, 3).fill_(0);
  for (auto dtype : {at::kFloat, at::kDouble}) {
    const auto q = at::randn({2, 3, 7, 8}, gen, dtype), k = at::randn({2, 3, 7, 8}, gen, dtype),
               v = at::randn({2, 3, 7, 8}, gen, dtype);
    const double tol = dtype == at::kFloat ? 1e-5 : 1e-12;
    for (const auto& mask : {causal_padding_mask(mask01, dtype), padding_mask(mask01, dtype), at::Tensor()}) {
      const auto ref = attention_reference(q, k, v, mask);
      EXPECT_LT(max_diff(attention(q, k, v, mask), ref), tol) << "fused: " << has_fused_attention();
    }
    // is_causal alone, and on top of a padding mask, equals the combined causal + padding mask.
    const auto causal_ref = attention_reference(q, k, v, causal_padding_mask(at::ones_like(mask01), dtype));
    EXPECT_LT(max_diff(attention_reference(q, k, v, {}, true), causal_ref), tol);
    EXPECT_LT(max_diff(attention(q, k, v, {}, true), causal_ref), tol);
    const auto both_ref = attention_reference(q, k, v, causal_padding_mask(mask01, dtype));
    EXPECT_LT(max_diff(attention_reference(q, k, v, padding_mask(mask01, dtype), true), both_ref), tol);
    EXPECT_LT(max_diff(attention(q, k, v, padding_mask(mask01, dtype), true), both_ref), tol);
    // The reference itself: one row by hand.
    const auto s = at::softmax(at::matmul(q[0][0][2], k[0][0].t()) / std::sqrt(8.0), -1);  // (T)
    EXPECT_LT(max_diff(attention_reference(q, k, v, {})[0][0][2], at::matmul(s, v[0][0])), tol);
  }
}

// The default model (4 layers, 128 wide, vocab 4096) on a (8, 128) batch: one forward +
// backward with a sane loss. LORASCOPE_TIMING=1 also times it (best of 5, 2 threads); a loaded
// machine makes OpenMP threads wait on each other, so the timing is opt-in.
TEST(LlamaTest, ForwardBackwardOfDefaultModel) {
  const bool timing = std::getenv("LORASCOPE_TIMING") != nullptr;
  const int threads = at::get_num_threads();
  if (timing) at::set_num_threads(2);
  TransformerConfig c;
  auto m = build(c, "causal_lm", 0, 12, at::kFloat);
  m->train();
  const auto ids = random_ids(8, 128, c.vocab_size, 13);
  using clock = std::chrono::steady_clock;
  const auto seconds = [](clock::time_point a, clock::time_point b) { return std::chrono::duration<double>(b - a).count(); };
  double best_fwd = 1e9, best = 1e9;
  for (int rep = 0; rep < (timing ? 5 : 1); ++rep) {
    const auto t0 = clock::now();
    const auto logits = m->forward(ids, {});  // (8, 128, 4096)
    const auto next = logits.narrow(1, 0, 127).reshape({-1, c.vocab_size});  // predicts ids[:, 1:]
    const auto loss = at::nll_loss(at::log_softmax(next, -1), ids.narrow(1, 1, 127).reshape({-1}));
    const auto t1 = clock::now();
    loss.backward();
    best_fwd = std::min(best_fwd, seconds(t0, t1));
    best = std::min(best, seconds(t0, clock::now()));
    EXPECT_NEAR(loss.item<double>(), std::log(4096.0), 0.5);  // near-uniform at init
  }
  for (const auto& p : m->parameters()) EXPECT_TRUE(at::isfinite(p.grad()).all().item<bool>());
  at::set_num_threads(threads);
  std::printf("[ timing ] llama 4x128, batch (8, 128), CPU, %d threads: forward + loss %.1f ms, "
              "forward + backward %.1f ms (best of %d)\n", timing ? 2 : threads, best_fwd * 1e3, best * 1e3,
              timing ? 5 : 1);
}

}  // namespace
}  // namespace lorascope
