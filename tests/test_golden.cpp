// Golden files from the reference libraries (tests/golden/interop/, made by
// tests/golden/make_interop.py with transformers, peft and torch): the default suite checks
// lorascope against them without Python. The full comparison is the interop suite
// (scripts/interop.sh); these keep its three core facts in every build:
//   logits of a transformers-written LLaMA (GQA, head_dim != hidden/heads, llama3 rope, tied
//   embeddings) on a batch with right and left padding; one training step (loss and every LoRA
//   gradient) against PEFT; three AdamW and three Muon steps against torch.optim.
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/grad_mode.h>  // at::NoGradGuard (not in <ATen/ATen.h> from LibTorch 2 on)
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "models/hf_checkpoint.h"
#include "models/peft_adapter.h"
#include "models/safetensors.h"
#include "optim/adamw.h"
#include "optim/muon.h"
#include "trainer/sequence_loss.h"

namespace lorascope {
namespace {

namespace fs = std::filesystem;

const fs::path kGolden = fs::path(LORASCOPE_SOURCE_DIR) / "tests" / "golden" / "interop";

double rel_err(const at::Tensor& got, const at::Tensor& want) {
  const auto w = want.to(at::kDouble);
  return (got.to(at::kDouble) - w).abs().max().item<double>() / w.abs().max().item<double>();
}

struct Batch {
  at::Tensor ids, mask, labels;
};

Batch read_batch() {
  const auto j = nlohmann::json::parse(std::ifstream(kGolden / "batch.json"));
  const auto rows = [&](const char* key) {
    std::vector<int64_t> flat;
    for (const auto& row : j.at(key)) {
      for (const auto& v : row) flat.push_back(v.get<int64_t>());
    }
    const auto B = static_cast<int64_t>(j.at(key).size());
    return at::tensor(flat, at::kLong).view({B, -1});
  };
  return {rows("input_ids"), rows("attention_mask"), rows("labels")};
}

std::shared_ptr<SequenceModel> golden_model() {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(0);
  return load_hf_model((kGolden / "model").string(), "causal_lm", 0, gen);
}

TEST(GoldenTest, LogitsEqualTransformers) {
  const auto b = read_batch();
  const auto want = load_safetensors((kGolden / "expected.safetensors").string()).at("logits");
  auto model = golden_model();
  model->eval();
  at::NoGradGuard no_grad;
  const auto got = model->forward(b.ids, b.mask);
  ASSERT_EQ(got.sizes(), want.sizes());
  // Positions with attention_mask 1: what transformers defines for a decoder.
  const auto keep = b.mask.to(at::kBool);
  EXPECT_LT(rel_err(got.index({keep}), want.index({keep})), 1e-5);
  // The unpadded row also through the mask-free causal path.
  const auto row = model->forward(b.ids.narrow(0, 0, 1), {});
  EXPECT_LT(rel_err(row, want.narrow(0, 0, 1)), 1e-5);
}

TEST(GoldenTest, TrainingStepEqualsPeft) {
  const auto b = read_batch();
  const auto want = load_safetensors((kGolden / "expected.safetensors").string());
  auto model = golden_model();
  const auto lora = load_peft_adapter(*model, (kGolden / "adapter").string());
  EXPECT_TRUE(lora.rslora);
  model->train();
  const auto logits = model->forward(b.ids, b.mask);
  // The trainer's loss (trainer/sequence_loss.h): labels are next-token targets aligned with
  // input_ids, -100 ignored.
  const auto loss = mean_loss(logits, b.labels, /*classification=*/false);
  EXPECT_LT(rel_err(loss.detach(), want.at("loss")), 1e-6);
  loss.backward();
  int checked = 0;
  for (const auto& p : model->named_parameters(true)) {
    if (!p.value().requires_grad()) continue;
    const auto key = "grad.base_model.model." + p.key();
    ASSERT_TRUE(want.count(key)) << key;
    EXPECT_LT(rel_err(p.value().grad(), want.at(key)), 1e-5) << key;
    ++checked;
  }
  EXPECT_EQ(checked, 8);  // A and B of q_proj and v_proj in two layers
}

// Three steps with the given gradients; returns the parameters after them.
template <typename MakeOptimizer>
std::map<std::string, at::Tensor> three_steps(const std::map<std::string, at::Tensor>& golden, MakeOptimizer make) {
  std::map<std::string, at::Tensor> params;
  std::vector<at::Tensor> list;
  for (const char* k : {"square", "tall", "wide"}) {
    params[k] = golden.at(std::string("param.") + k).clone().set_requires_grad(true);
    list.push_back(params[k]);
  }
  auto opt = make(list);
  for (int step = 0; step < 3; ++step) {
    for (auto& [k, p] : params) p.mutable_grad() = golden.at("grad." + k + "." + std::to_string(step)).clone();
    opt->step();
  }
  return params;
}

TEST(GoldenTest, AdamWAndMuonStepsEqualTorchOptim) {
  const auto golden = load_safetensors((kGolden / "optim.safetensors").string());
  const auto adamw = three_steps(golden, [](std::vector<at::Tensor> ps) {
    return std::make_unique<AdamW>(std::move(ps), AdamWOptions{0.01, 0.9, 0.99, 1e-8, 0.1});
  });
  // torch.optim.Muon's EMA momentum is (1 - mu) times this sum-form momentum; the Newton-Schulz
  // normalization removes the factor (ns_eps 0: X / ||X|| exactly as torch's clamp does here).
  const auto muon = three_steps(golden, [](std::vector<at::Tensor> ps) {
    MuonOptions o;
    o.lr = 0.02;
    o.momentum = 0.9;
    o.nesterov = true;
    o.ortho = OrthoOptions{OrthoKind::NewtonSchulz, 0.0, 5, 0.0};
    o.lr_scaling = LrScaling::Original;
    o.weight_decay = 0.1;
    return std::make_unique<Muon>(std::move(ps), o);
  });
  for (const char* k : {"square", "tall", "wide"}) {
    const auto p0 = golden.at(std::string("param.") + k);
    for (const auto& [name, got] : {std::pair{"adamw", adamw.at(k)}, std::pair{"muon", muon.at(k)}}) {
      const auto want = golden.at(std::string(name) + "." + k);
      // Relative to how far the optimizer moved the parameter.
      const double err = (got.detach() - want).abs().max().item<double>() / (want - p0).abs().max().item<double>();
      EXPECT_LT(err, 1e-5) << name << " " << k;
    }
  }
}

}  // namespace
}  // namespace lorascope
