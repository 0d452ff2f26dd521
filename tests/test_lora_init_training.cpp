// The LoRA inits inside a training run (lora.init, issue 19): the gradient the LoRA-GA / LoRA-One
// inits read, the output they keep, their PEFT export for the unmodified base, and resume.
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/grad_mode.h>

#include <cmath>

#include "models/linear.h"
#include "models/peft_adapter.h"
#include "models/safetensors.h"
#include "tests/cli_fixtures.h"
#include "tests/train_fixtures.h"
#include "trainer/sequence_loss.h"
#include "trainer/train_session.h"
#include "util/json_file.h"

namespace lorascope {
namespace {

Session session_with(const Fixture& fx, json doc, const std::string& scratch) {
  Session s;
  s.cfg = TrainConfig::from_json(fx.spec(doc).config);
  setup(s, (fx.dir / scratch).string());
  return s;
}

json init_doc(const Fixture& fx, const std::string& base, const std::string& init) {
  auto doc = fx.finetune_doc(base);
  doc["lora"]["init"] = init;
  return doc;
}

at::Tensor logits_of_first_batch(Session& s) {
  at::NoGradGuard no_grad;
  s.model->eval();
  const auto batches = epoch_batches(s, s.test, 0, false);
  return forward_batch(s, batches.at(0)).to(at::kDouble);
}

double max_rel(const at::Tensor& got, const at::Tensor& want) {
  return (got - want).abs().max().item<double>() / want.abs().max().item<double>();
}

// LoRA-One: s B A = (s / (gamma sigma_1)) (-G)_r (the authors' B A = (-G)_r / (gamma sigma_1), to
// which the adapter's scaling s applies), G the gradient of the mean loss over the
// first lora.init_batches training micro-batches. The reference: a session with PEFT's init
// (B = 0, so the output is the base's), the adapted weights' gradient taken here by hand, and the
// truncated SVD in float64.
TEST(GradientLoraInitTest, LoraOneIsOneProjectedStepOfTheFirstBatchesGradient) {
  Fixture fx("gradinit");
  const auto base = fx.pretrain();
  auto doc = init_doc(fx, base, "lora_one");
  doc["lora"]["init_batches"] = 3;
  doc["lora"]["init_gamma"] = 8;
  Session s = session_with(fx, doc, "one");
  Session ref = session_with(fx, init_doc(fx, base, "peft"), "ref");

  const auto layers = linear_layers_by_name(*ref.model);
  for (const auto& [name, lin] : layers) {
    if (lin->has_adapter()) lin->weight.requires_grad_(true);
  }
  const auto batches = epoch_batches(ref, ref.train, 0, true);
  double count = 0;
  for (int i = 0; i < 3; ++i) count += loss_count(batches[i].labels, true);
  ref.model->eval();
  for (int i = 0; i < 3; ++i) (loss_sum(forward_batch(ref, batches[i]), batches[i].labels, true) / count).backward();

  const auto got_layers = linear_layers_by_name(*s.model);
  int checked = 0;
  for (const auto& [name, lin] : layers) {
    if (!lin->has_adapter()) continue;
    const auto G = lin->weight.grad().to(at::kDouble);
    auto [U, S, Vh] = at::linalg_svd(-G, false);
    const int64_t r = 4;
    const auto& got_lin = *got_layers.at(name);
    const auto want = got_lin.scaling * at::matmul(U.narrow(1, 0, r) * S.narrow(0, 0, r), Vh.narrow(0, 0, r)) /
                      (8.0 * S[0].item<double>());
    const auto got = got_lin.scaling * at::matmul(got_lin.lora_B->weight.to(at::kDouble), got_lin.lora_A->weight.to(at::kDouble));
    EXPECT_LT(max_rel(got, want), 1e-5) << name << ": |got| " << got.abs().max().item<double>() << ", |want| "
                                         << want.abs().max().item<double>();
    // LoRA-One leaves the base as it is.
    EXPECT_TRUE(at::equal(got_lin.weight, lin->weight.detach())) << name;
    ++checked;
  }
  EXPECT_EQ(checked, 4);
  // The trainer restored every flag and left no gradient behind.
  for (const auto& p : s.roles.parameters) {
    EXPECT_FALSE(p.tensor.grad().defined()) << p.name;
    EXPECT_EQ(p.tensor.requires_grad(), p.trains()) << p.name;
  }
}

// LoRA-GA (both flavours) and OLoRA subtract their starting product from the base: the model's
// output at init is the base model's (a PEFT-init session, B = 0) up to one rounding of W.
// LoRA-One starts from a step, so its output moves.
TEST(GradientLoraInitTest, BaseCorrectingInitsKeepTheOutputAtInit) {
  Fixture fx("initout");
  const auto base = fx.pretrain();
  Session ref = session_with(fx, init_doc(fx, base, "peft"), "ref");
  const auto want = logits_of_first_batch(ref);
  for (const char* init : {"lora_ga", "lora_ga_peft", "olora", "spectral"}) {
    Session s = session_with(fx, init_doc(fx, base, init), init);
    EXPECT_LT(max_rel(logits_of_first_batch(s), want), 1e-5) << init;
    double delta = 0;  // and the adapters do start away from zero
    for (const auto& a : s.adapters()) delta += a.B.abs().sum().item<double>();
    EXPECT_GT(delta, 0) << init;
  }
  Session one = session_with(fx, init_doc(fx, base, "lora_one"), "lora_one");
  EXPECT_GT(max_rel(logits_of_first_batch(one), want), 1e-4);
}

// An adapter trained from a base-correcting init is exported for the unmodified base, as PEFT
// converts PiSSA / OLoRA / LoRA-GA adapters: rank 2r, alpha doubled. Loaded onto the original
// base (a session with lora.adapter), it gives the trained model's logits.
TEST(GradientLoraInitTest, ExportOfABaseCorrectingInitReproducesTheModelOnTheOriginalBase) {
  Fixture fx("initexport");
  const auto base = fx.pretrain();
  for (const char* init : {"olora", "lora_ga", "spectral"}) {
    for (const bool rslora : {false, true}) {
      auto doc = init_doc(fx, base, init);
      doc["lora"]["rslora"] = rslora;
      Session s = session_with(fx, doc, std::string(init) + "_train");
      {  // as if trained: every factor moved
        at::NoGradGuard no_grad;
        auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
        for (const auto& a : s.adapters()) {
          a.A.add_(at::randn(a.A.sizes(), gen, a.A.options()) * 0.05);
          a.B.add_(at::randn(a.B.sizes(), gen, a.B.options()) * 0.05);
        }
      }
      const auto want = logits_of_first_batch(s);
      const auto dir = fx.dir / (std::string(init) + (rslora ? "_rs" : "") + "_adapter");
      save_peft_adapter(*s.model, s.lora, dir.string(), base, &s.initial_adapters);
      const auto cfg = read_json_file((dir / "adapter_config.json").string());
      EXPECT_EQ(cfg["r"], 8);
      EXPECT_DOUBLE_EQ(cfg["lora_alpha"].get<double>(), rslora ? 8 * std::sqrt(2.0) : 16.0);
      const auto tensors = load_safetensors((dir / "adapter_model.safetensors").string());
      EXPECT_EQ(tensors.at("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight").size(0), 8);

      auto loaded = fx.finetune_doc(base);
      loaded["lora"]["adapter"] = dir.string();
      Session back = session_with(fx, loaded, std::string(init) + "_loaded");
      EXPECT_LT(max_rel(logits_of_first_batch(back), want), 1e-5) << init << (rslora ? " rslora" : "");
      // Without the starting factors, the export is refused rather than wrong.
      EXPECT_THROW(save_peft_adapter(*s.model, s.lora, (fx.dir / "refused").string(), base), std::runtime_error);
    }
  }
}

// The init is a function of the base, the data and the seed: a resumed run recomputes it and
// continues the uninterrupted trajectory (the base fingerprint would name a difference).
TEST(GradientLoraInitTest, ResumedLoraGaRunContinuesTheSameTrajectory) {
  Fixture fx("initresume");
  const auto base = fx.pretrain();
  auto doc = init_doc(fx, base, "lora_ga");
  doc["lora"]["init_batches"] = 2;
  const auto a_dir = fx.dir / "a", b_dir = fx.dir / "b";
  expect_resume_continues(fx, doc, 10, a_dir, b_dir);
  const auto summary = read_json_file((a_dir / "summary.json").string());
  EXPECT_EQ(summary["peft_adapter_rank"], 8);
}

// A rank the layers cannot hold is found only when the adapters are attached (setup): the run
// still exits 2 naming the layer, and the output folder it had made is gone again.
TEST(GradientLoraInitTest, RankTooLargeForTheInitExitsTwoAndLeavesNoOutputFolder) {
  Fixture fx("initrank");
  const auto base = fx.pretrain();
  auto doc = init_doc(fx, base, "olora");
  doc["lora"]["r"] = 40;  // the layers are 32 wide
  const auto cfg = fx.dir / "rank.json";
  std::ofstream(cfg) << doc.dump();
  const auto out = fx.dir / "out";
  const auto r = fixtures::lorascope_cli("finetune --config " + cfg.string() + " --out " + out.string());
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("lora: r: expected at most min(out, in) = 32"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("for olora init, got 40"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(out));
}

}  // namespace
}  // namespace lorascope
