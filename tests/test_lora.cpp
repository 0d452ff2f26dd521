// LoRA adapters: init, merging, freezing, PEFT's target matching, spectral (PiSSA) init.
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/grad_mode.h>  // at::NoGradGuard (not in <ATen/ATen.h> from LibTorch 2 on)

#include <cmath>
#include <functional>
#include <limits>
#include <map>

#include "models/linear.h"
#include "models/lora.h"
#include "models/sequence_model.h"
#include "model_fixtures.h"

namespace lorascope {
namespace {

TransformerConfig tiny(const std::string& arch) { return fixtures::tiny_config(arch); }

std::shared_ptr<SequenceModel> build(const std::string& arch, const std::string& head,
                                     at::ScalarType dtype = at::kDouble) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1);
  auto m = make_model(tiny(arch), head, head == "classification" ? 3 : 0, gen);
  m->to(dtype);
  m->eval();
  return m;
}

at::Tensor ids(int64_t B = 2, int64_t T = 7) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(2);
  return at::randint(2, 50, {B, T}, gen, at::kLong);
}

double max_diff(const at::Tensor& a, const at::Tensor& b) { return (a - b).abs().max().item<double>(); }

// Gives every lora_B a random value, so that the adapters change the output.
void randomize_b(torch::nn::Module& m, double std) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  at::NoGradGuard no_grad;
  for (auto& a : find_adapters(m)) a.B.copy_(at::randn(a.B.sizes(), gen, at::kDouble) * std);
}

std::vector<std::string> adapter_names(const std::vector<AdapterRef>& adapters) {
  std::vector<std::string> out;
  for (const auto& a : adapters) out.push_back(a.name);
  return out;
}

TEST(LoraTest, ZeroDeltaAtInitLeavesOutputsUnchanged) {
  for (const auto& [arch, head] : {std::pair<std::string, std::string>{"llama", "causal_lm"},
                                   {"llama", "classification"}, {"roberta", "classification"}}) {
    auto m = build(arch, head);
    const auto base = m->forward(ids(), {});
    auto gen = at::make_generator<at::CPUGeneratorImpl>(4);
    LoraConfig cfg;
    cfg.targets = {arch == "llama" ? "q_proj" : "query", arch == "llama" ? "v_proj" : "value"};
    const auto adapters = attach_lora(*m, cfg, gen);
    ASSERT_EQ(adapters.size(), 4u);
    for (const auto& a : adapters) {
      EXPECT_EQ(a.B.abs().max().item<double>(), 0.0);
      EXPECT_GT(a.A.abs().max().item<double>(), 0.0);
    }
    EXPECT_TRUE(m->forward(ids(), {}).equal(base)) << arch << " " << head;
  }
}

TEST(LoraTest, MergedEqualsUnmerged) {
  for (auto dtype : {at::kFloat, at::kDouble}) {
    const double tol = dtype == at::kFloat ? 1e-5 : 1e-12;
    auto m = build("llama", "causal_lm", dtype);
    auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
    LoraConfig cfg;
    cfg.targets = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
    attach_lora(*m, cfg, gen);
    randomize_b(*m, 0.1);
    const auto w0 = m->named_parameters()["model.layers.0.self_attn.q_proj.weight"].clone();
    const auto unmerged = m->forward(ids(), {});
    merge_lora(*m);
    const auto merged = m->forward(ids(), {});
    EXPECT_GT(max_diff(m->named_parameters()["model.layers.0.self_attn.q_proj.weight"], w0), 1e-3);
    merge_lora(*m);  // a merged layer is not merged twice
    EXPECT_LT(max_diff(m->forward(ids(), {}), unmerged), tol) << dtype;
    EXPECT_LT(max_diff(merged, unmerged), tol) << dtype;
    unmerge_lora(*m);
    EXPECT_LT(max_diff(m->forward(ids(), {}), unmerged), tol) << dtype;
    EXPECT_LT(max_diff(m->named_parameters()["model.layers.0.self_attn.q_proj.weight"], w0), tol) << dtype;
  }
}

TEST(LoraTest, MergeRejectsNonFiniteWeightsAndChangesNothing) {
  auto m = build("llama", "causal_lm");
  auto gen = at::make_generator<at::CPUGeneratorImpl>(6);
  auto adapters = attach_lora(*m, LoraConfig{}, gen);
  randomize_b(*m, 0.1);
  {
    at::NoGradGuard no_grad;
    adapters.back().B[0][0] = std::numeric_limits<double>::infinity();
  }
  const auto before = m->named_parameters()["model.layers.0.self_attn.q_proj.weight"].clone();
  try {
    merge_lora(*m);
    ADD_FAILURE() << "merge accepted an infinite weight";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("model.layers.1.self_attn.v_proj"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(m->named_parameters()["model.layers.0.self_attn.q_proj.weight"].equal(before));
}

TEST(LoraTest, GradientsOnlyOnAdaptersAndModulesToSave) {
  auto m = build("llama", "classification");
  auto gen = at::make_generator<at::CPUGeneratorImpl>(7);
  LoraConfig cfg;
  cfg.modules_to_save = {m->head_module()};
  const auto adapters = attach_lora(*m, cfg, gen);
  randomize_b(*m, 0.1);  // with B = 0 the gradient of A is zero
  m->forward(ids(), {}).pow(2).sum().backward();
  int trained = 0;
  for (const auto& p : m->named_parameters()) {
    const auto& name = p.key();
    const bool should = name.find(".lora_") != std::string::npos || name == "score.weight";
    EXPECT_EQ(p.value().requires_grad(), should) << name;
    EXPECT_EQ(p.value().grad().defined(), should) << name;
    if (should) {
      EXPECT_GT(p.value().grad().abs().max().item<double>(), 0.0) << name;
      ++trained;
    }
  }
  EXPECT_EQ(trained, 2 * 4 + 1);
  // The AdapterRefs are the live parameters.
  EXPECT_TRUE(adapters[0].A.grad().defined());

  auto r = build("roberta", "classification");
  LoraConfig rc;
  rc.targets = {"query"};
  rc.modules_to_save = {"classifier", "nothing_here"};
  try {
    attach_lora(*r, rc, gen);
    ADD_FAILURE() << "unknown modules_to_save accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("\"nothing_here\" matches no module"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("roberta.embeddings"), std::string::npos) << e.what();
  }
}

TEST(LoraTest, TargetMatchingLikePeft) {
  struct Case {
    std::string arch;
    std::vector<std::string> targets;
    std::string regex;
    std::vector<std::string> exclude;
    std::vector<std::string> expected;  // empty: an error containing `error`
    std::string error;
  };
  const std::string L0 = "model.layers.0.", L1 = "model.layers.1.", R0 = "roberta.encoder.layer.0.",
                    R1 = "roberta.encoder.layer.1.";
  const std::vector<Case> cases = {
      {"llama", {"q_proj"}, "", {}, {L0 + "self_attn.q_proj", L1 + "self_attn.q_proj"}, ""},
      {"llama", {"self_attn.o_proj"}, "", {}, {L0 + "self_attn.o_proj", L1 + "self_attn.o_proj"}, ""},
      {"llama", {"model.layers.1.mlp.up_proj"}, "", {}, {L1 + "mlp.up_proj"}, ""},
      {"llama", {"q_proj", "v_proj"}, "", {L0 + "self_attn.q_proj"},
       {L0 + "self_attn.v_proj", L1 + "self_attn.q_proj", L1 + "self_attn.v_proj"}, ""},
      {"llama", {"q_proj", "gate_proj"}, "", {"mlp.gate_proj"}, {L0 + "self_attn.q_proj", L1 + "self_attn.q_proj"}, ""},
      {"llama", {}, "model\\.layers\\.1\\.mlp\\..*", {},
       {L1 + "mlp.gate_proj", L1 + "mlp.up_proj", L1 + "mlp.down_proj"}, ""},
      {"llama", {"ignored_when_regex"}, ".*\\.(k|v)_proj", {L1 + "self_attn.k_proj"},
       {L0 + "self_attn.k_proj", L0 + "self_attn.v_proj", L1 + "self_attn.v_proj"}, ""},
      {"llama", {}, "q_proj", {}, {}, "target_regex \"q_proj\" matches no linear layer"},  // full match only
      {"llama", {"proj"}, "", {}, {}, "target \"proj\" matches no linear layer"},        // "." + target only
      {"llama", {"q_proj", "query"}, "", {}, {},
       "target \"query\" matches no linear layer; linear layers: model.layers.0.self_attn.q_proj, "
       "model.layers.0.self_attn.k_proj"},
      {"llama", {"lm_head"}, "", {}, {}, "target \"lm_head\" matches no linear layer"},  // tied: no layer
      {"llama", {"q_proj"}, "", {"q_proj"}, {}, "every targeted linear layer is excluded"},
      {"llama", {}, "(", {}, {}, "target_regex: expected a valid regular expression"},
      {"roberta", {"query", "value"}, "", {},
       {R0 + "attention.self.query", R0 + "attention.self.value", R1 + "attention.self.query",
        R1 + "attention.self.value"}, ""},
      {"roberta", {"output.dense"}, "", {},
       {R0 + "attention.output.dense", R0 + "output.dense", R1 + "attention.output.dense", R1 + "output.dense"}, ""},
      {"roberta", {"dense"}, "", {"attention.output.dense", "output.dense"},
       {R0 + "intermediate.dense", R1 + "intermediate.dense", "classifier.dense"}, ""},
      {"roberta", {"classifier.out_proj"}, "", {}, {"classifier.out_proj"}, ""},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    auto m = build(c.arch, c.arch == "llama" ? "causal_lm" : "classification");
    LoraConfig cfg;
    cfg.r = 2;
    cfg.targets = c.targets;
    cfg.target_regex = c.regex;
    cfg.exclude = c.exclude;
    auto gen = at::make_generator<at::CPUGeneratorImpl>(8);
    if (!c.expected.empty()) {
      EXPECT_EQ(adapter_names(attach_lora(*m, cfg, gen)), c.expected) << "case " << i;
      EXPECT_EQ(adapter_names(find_adapters(*m)), c.expected) << "case " << i;
      continue;
    }
    try {
      attach_lora(*m, cfg, gen);
      ADD_FAILURE() << "case " << i << ": no error";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find(c.error), std::string::npos) << "case " << i << ": " << e.what();
    }
    EXPECT_TRUE(find_adapters(*m).empty()) << "case " << i << ": a failed attach left adapters";
  }
  auto m = build("llama", "causal_lm");
  EXPECT_EQ(linear_layer_names(*m).size(), 14u);  // 7 per layer; the tied head is no layer
  auto gen = at::make_generator<at::CPUGeneratorImpl>(9);
  attach_lora(*m, LoraConfig{}, gen);
  EXPECT_THROW(attach_lora(*m, LoraConfig{}, gen), std::runtime_error);  // already adapted
}

TEST(LoraTest, ConfigErrorsNameTheKey) {
  const std::vector<std::pair<std::function<void(LoraConfig&)>, std::string>> cases = {
      {[](LoraConfig& c) { c.r = 0; }, "lora: r: expected an integer >= 1, got 0"},
      {[](LoraConfig& c) { c.alpha = -1; }, "lora: alpha: expected a positive number"},
      {[](LoraConfig& c) { c.dropout = 1; }, "lora: dropout: expected a number in [0, 1)"},
      {[](LoraConfig& c) { c.init = "dora"; },
       "lora: init: expected one of peft, gaussian, spectral, olora, lora_ga, lora_ga_peft, lora_one, got \"dora\""},
      {[](LoraConfig& c) { c.init = "lora_ga"; c.init_gamma = 0; }, "lora: init_gamma: expected a positive number"},
      {[](LoraConfig& c) { c.init = "lora_ga"; c.r = 5; },
       "lora: r: expected at most min(out, in) / 2 = 4 of model.layers.0.self_attn.v_proj for lora_ga init, got 5"},
      {[](LoraConfig& c) { c.init = "olora"; c.r = 9; }, "lora: r: expected at most min(out, in) = 8 of model.layers.0.self_attn.v_proj for olora init"},
      {[](LoraConfig& c) { c.init = "gaussian"; c.init_scale = 0; }, "lora: init_scale: expected a positive number"},
      {[](LoraConfig& c) { c.targets = {}; }, "lora: targets: expected at least one target"},
      {[](LoraConfig& c) { c.init = "spectral"; c.r = 17; }, "lora: r: expected at most min(out, in) = 8 of model.layers.0.self_attn.v_proj"},
  };
  for (const auto& [edit, message] : cases) {
    auto m = build("llama", "causal_lm");
    LoraConfig cfg;
    cfg.targets = {"v_proj"};
    edit(cfg);
    auto gen = at::make_generator<at::CPUGeneratorImpl>(10);
    try {
      attach_lora(*m, cfg, gen);
      ADD_FAILURE() << "no error for " << message;
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << e.what();
    }
  }
}

TEST(LoraTest, SpectralInitKeepsOutputsAndHoldsTopRSvd) {
  auto m = build("llama", "causal_lm");
  const auto base = m->forward(ids(), {});
  std::map<std::string, at::Tensor> W0;
  for (const auto& name : linear_layer_names(*m)) W0[name] = m->named_parameters()[name + ".weight"].clone();
  LoraConfig cfg;
  cfg.init = "spectral";
  cfg.r = 3;
  cfg.alpha = 5;
  cfg.targets = {"q_proj", "k_proj", "down_proj"};
  auto gen = at::make_generator<at::CPUGeneratorImpl>(11);
  const auto adapters = attach_lora(*m, cfg, gen);
  EXPECT_LT(max_diff(m->forward(ids(), {}), base), 1e-12);
  for (const auto& a : adapters) {
    const auto usv = at::linalg_svd(W0[a.name], false);
    const auto top = at::matmul(std::get<0>(usv).narrow(1, 0, 3) * std::get<1>(usv).narrow(0, 0, 3),
                                std::get<2>(usv).narrow(0, 0, 3));  // U_r S_r V_r^T
    EXPECT_LT(max_diff(a.scaling * at::matmul(a.B, a.A), top), 1e-12) << a.name;
    EXPECT_LT(max_diff(m->named_parameters()[a.name + ".weight"], W0[a.name] - top), 1e-12) << a.name;
    // A and B carry sqrt(S_r / scaling) each: equal norms.
    EXPECT_NEAR(a.A.norm().item<double>(), a.B.norm().item<double>(), 1e-12) << a.name;
  }
  // Float32: the subtraction is of the stored factors, so outputs still match to rounding.
  auto m32 = build("llama", "causal_lm", at::kFloat);
  const auto base32 = m32->forward(ids(), {});
  attach_lora(*m32, cfg, gen);
  EXPECT_LT(max_diff(m32->forward(ids(), {}), base32), 1e-5);
}

TEST(LoraTest, ScalingAndInitScales) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(12);
  LoraConfig cfg;
  cfg.r = 4;
  cfg.alpha = 16;
  auto m = build("llama", "causal_lm");
  EXPECT_DOUBLE_EQ(attach_lora(*m, cfg, gen)[0].scaling, 4.0);  // alpha / r
  cfg.rslora = true;
  m = build("llama", "causal_lm");
  EXPECT_DOUBLE_EQ(attach_lora(*m, cfg, gen)[0].scaling, 8.0);  // alpha / sqrt(r)

  // PEFT: A ~ U(-1/sqrt(in), 1/sqrt(in)) (Kaiming-uniform, a = sqrt(5)); B = 0.
  cfg.rslora = false;
  cfg.targets = {"q_proj", "down_proj"};
  m = build("llama", "causal_lm");
  for (const auto& a : attach_lora(*m, cfg, gen)) {
    const double bound = 1.0 / std::sqrt(double(a.A.size(1)));
    EXPECT_LE(a.A.abs().max().item<double>(), bound) << a.name;
    EXPECT_GT(a.A.abs().max().item<double>(), 0.8 * bound) << a.name;
    EXPECT_EQ(a.B.abs().max().item<double>(), 0.0) << a.name;
  }

  // Gaussian: A ~ N(0, init_scale^2), B = 0.
  cfg.init = "gaussian";
  cfg.init_scale = 1e-3;
  cfg.r = 8;
  cfg.targets = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
  m = build("llama", "causal_lm");
  std::vector<at::Tensor> As;
  for (const auto& a : attach_lora(*m, cfg, gen)) {
    As.push_back(a.A.flatten());
    EXPECT_EQ(a.B.abs().max().item<double>(), 0.0);
  }
  const double std = at::cat(As).std().item<double>();  // 14 x 8 x (16 or 24) samples
  EXPECT_NEAR(std, 1e-3, 1e-4) << std;
}

TEST(LoraTest, DropoutOnlyWhileTraining) {
  auto m = build("llama", "causal_lm");
  auto gen = at::make_generator<at::CPUGeneratorImpl>(13);
  LoraConfig cfg;
  cfg.dropout = 0.5;
  attach_lora(*m, cfg, gen);
  randomize_b(*m, 0.1);
  const auto eval = m->forward(ids(), {});
  EXPECT_TRUE(m->forward(ids(), {}).equal(eval));
  m->train();
  EXPECT_GT(max_diff(m->forward(ids(), {}), eval), 1e-6);
}

}  // namespace
}  // namespace lorascope
