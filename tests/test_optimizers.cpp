// Optimizer updates against hand-written float64 references of their update rules, state
// round trips, schedules and argument checks.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "optim/adamw.h"
#include "optim/hybrid.h"
#include "optim/lr_schedule.h"
#include "optim/muon.h"
#include "optim/sgd.h"
#include "optim/state_io.h"
#include "optim/thin_muon_step.h"
#include "tests/tensor_fixtures.h"

namespace lorascope {
namespace {

// Gradient of a fixed quadratic 1/2 ||P - T||^2 + 1/4 ||P||^4-ish term: deterministic, nonlinear.
void set_grad(at::Tensor& p, const at::Tensor& target) {
  p.mutable_grad() = (p - target) + 0.1 * p * p.pow(2).sum();
}

TEST(MuonTest, MatchesPaperEquationOneWithExactT) {
  // Reference: M_t = G_t + mu M_{t-1}; W -= lr * scale * U V^T of M_t (or of G + mu M for
  // Nesterov), with decoupled decay; U V^T from an SVD.
  // mu = 0 is SpecGD, which takes small::add_spectral_map on the CPU.
  for (auto [nesterov, mu] : std::vector<std::pair<bool, double>>{{false, 0.9}, {true, 0.9}, {false, 0.0}}) {
    MuonOptions o;
    o.lr = 0.05;
    o.momentum = mu;
    o.nesterov = nesterov;
    o.ortho = {OrthoKind::Exact};
    o.lr_scaling = LrScaling::Original;
    o.weight_decay = 0.1;
    auto p = randn({40, 8}, 1), target = randn({40, 8}, 2);
    auto ref = p.clone(), buf = at::zeros_like(p);
    Muon muon({p}, o);
    for (int step = 0; step < 20; ++step) {
      set_grad(p, target);
      auto g = (ref - target) + 0.1 * ref * ref.pow(2).sum();
      buf = g + mu * buf;
      auto d = nesterov ? g + mu * buf : buf;
      auto [U, S, Vh] = at::linalg_svd(d, false);
      ref = ref * (1 - 0.05 * 0.1) - 0.05 * std::sqrt(40.0 / 8.0) * at::matmul(U, Vh);
      muon.step();
    }
    EXPECT_LT(max_abs(p - ref), 1e-12) << "nesterov " << nesterov << " mu " << mu;
  }
}

TEST(MuonTest, SpecGDStepHasUnitSpectralNormAndLrScalingsFollowTheirFormulas) {
  auto p = randn({30, 6}, 3);
  auto before = p.clone();
  MuonOptions o;
  o.lr = 0.1;
  o.momentum = 0.0;
  o.ortho = {OrthoKind::Exact};
  Muon specgd({p}, o);
  p.mutable_grad() = randn({30, 6}, 4);
  specgd.step();
  auto s = at::linalg_svdvals((before - p) / 0.1);
  EXPECT_NEAR(s.max().item<double>(), 1.0, 1e-12);
  EXPECT_NEAR(s.min().item<double>(), 1.0, 1e-12);
  EXPECT_EQ(specgd.name(), "specgd");
  EXPECT_DOUBLE_EQ(muon_lr_scale(30, 6, LrScaling::None), 1.0);
  EXPECT_DOUBLE_EQ(muon_lr_scale(30, 6, LrScaling::Original), std::sqrt(5.0));
  EXPECT_DOUBLE_EQ(muon_lr_scale(6, 30, LrScaling::Original), 1.0);
  EXPECT_DOUBLE_EQ(muon_lr_scale(6, 30, LrScaling::MatchAdamwRms), 0.2 * std::sqrt(30.0));
}

TEST(MuonTest, GroupedStepEqualsPerParameterLoop) {
  // Same-shape matrices go through one stacked orthogonalization and foreach updates; the
  // result must be the per-parameter update. Mixed shapes, a parameter without a gradient in
  // some steps (its momentum starts late), every orthogonalizer, Nesterov and weight decay.
  for (auto kind : {OrthoKind::Exact, OrthoKind::Smoothed, OrthoKind::NewtonSchulz}) {
    for (double mu : {0.0, 0.9}) {
      MuonOptions o;
      o.lr = 0.03;
      o.momentum = mu;
      o.nesterov = mu > 0;
      o.ortho = {kind, 0.01, 5};
      o.lr_scaling = LrScaling::MatchAdamwRms;
      o.weight_decay = 0.05;
      std::vector<at::Tensor> grouped, looped, targets;
      const std::vector<std::vector<int64_t>> shapes = {{12, 4}, {4, 20}, {12, 4}, {12, 4}, {4, 20}, {7, 3}};
      for (size_t i = 0; i < shapes.size(); ++i) {
        grouped.push_back(randn(shapes[i], 10 + i));
        looped.push_back(grouped.back().clone());
        targets.push_back(randn(shapes[i], 50 + i));
      }
      Muon a(grouped, o);
      o.grouped = false;
      Muon b(looped, o);
      for (int step = 0; step < 6; ++step) {
        for (size_t i = 0; i < shapes.size(); ++i) {
          const bool skip = i == 2 && step < 3;  // no gradient: skipped, momentum starts at 3
          grouped[i].mutable_grad() = at::Tensor();
          looped[i].mutable_grad() = at::Tensor();
          if (skip) continue;
          set_grad(grouped[i], targets[i]);
          set_grad(looped[i], targets[i]);
        }
        a.step();
        b.step();
      }
      for (size_t i = 0; i < shapes.size(); ++i) {
        EXPECT_LT(max_abs(grouped[i] - looped[i]), 1e-12)
            << to_string(kind) << " mu " << mu << " param " << i;
      }
      EXPECT_GT(max_abs(grouped[0] - randn(shapes[0], 10)), 1e-3);  // it did move
    }
  }
}

TEST(MuonTest, FusedThinFactorStepFollowsTheSeparateFormInFloat64) {
  // LoRA factors on the CPU take thin_muon_step (momentum, Gram Newton-Schulz and the decayed
  // update fused). Reference: the update rule written out in float64 with the direct
  // Newton-Schulz iteration; the float32 fused step must follow it to float32 rounding.
  for (auto shape : std::vector<std::vector<int64_t>>{{8, 1024}, {1024, 8}}) {
    for (bool nesterov : {false, true}) {
      MuonOptions o;
      o.lr = 0.02;
      o.momentum = 0.95;
      o.nesterov = nesterov;
      o.lr_scaling = LrScaling::MatchAdamwRms;
      o.weight_decay = 0.1;
      auto p = randn(shape, 5).to(at::kFloat);
      const auto p0 = p.to(at::kDouble);
      auto ref = p0.clone(), buf = at::zeros_like(ref);
      Muon muon({p}, o);
      const double scale = muon_lr_scale(shape[0], shape[1], o.lr_scaling);
      for (int step = 0; step < 5; ++step) {
        const auto g = randn(shape, 100 + step);
        p.mutable_grad() = g.to(at::kFloat);
        ASSERT_TRUE(thin_muon_step_applies(p, o));
        buf = g + 0.95 * buf;
        const auto d = nesterov ? g + 0.95 * buf : buf;
        ref = ref * (1 - 0.02 * 0.1) - 0.02 * scale * newton_schulz(d, 5);
        muon.step();
      }
      // Storing W in float32 alone costs up to 2^-24 |W| per step; beyond that, 1e-5 of the motion.
      const double floor = 5 * std::ldexp(max_abs(p0), -24);
      EXPECT_LT(max_abs(p.to(at::kDouble) - ref), floor + 1e-5 * max_abs(ref - p0))
          << shape[0] << "x" << shape[1] << " nesterov " << nesterov;
    }
  }
  // Where the fused step does not apply, the separate form runs.
  MuonOptions o;
  auto square = at::zeros({16, 16}, at::kFloat);
  square.mutable_grad() = at::ones_like(square);
  EXPECT_FALSE(thin_muon_step_applies(square, o));
  auto thin_bf16 = at::zeros({8, 1024}, at::kBFloat16);
  thin_bf16.mutable_grad() = at::ones_like(thin_bf16);
  EXPECT_FALSE(thin_muon_step_applies(thin_bf16, o));
  auto thin = at::zeros({8, 1024}, at::kFloat);
  thin.mutable_grad() = at::ones_like(thin);
  EXPECT_TRUE(thin_muon_step_applies(thin, o));
  EXPECT_FALSE(thin_muon_step_applies(thin, specgd_options()));
}

TEST(AdamWTest, MatchesWrittenOutUpdateInFloat64) {
  AdamWOptions o{0.01, 0.8, 0.95, 1e-6, 0.05};
  auto p = randn({5, 7}, 5), target = randn({5, 7}, 6);
  auto ref = p.clone(), m = at::zeros_like(p), v = at::zeros_like(p);
  AdamW adamw({p}, o);
  for (int t = 1; t <= 50; ++t) {
    set_grad(p, target);
    adamw.step();
    auto g = (ref - target) + 0.1 * ref * ref.pow(2).sum();
    ref = ref * (1 - 0.01 * 0.05);
    m = 0.8 * m + 0.2 * g;
    v = 0.95 * v + 0.05 * g * g;
    auto mhat = m / (1 - std::pow(0.8, t)), vhat = v / (1 - std::pow(0.95, t));
    ref = ref - 0.01 * mhat / (vhat.sqrt() + 1e-6);
  }
  EXPECT_LT(max_abs(p - ref), 1e-12);
}

TEST(SGDTest, GDIsPlainGradientStepAndMomentumFollowsTorchConvention) {
  auto p = randn({4, 4}, 7), target = randn({4, 4}, 8);
  auto ref = p.clone(), buf = at::Tensor();
  SGD sgd({p}, {0.1, 0.9, 0.0, true, 0.01});
  for (int t = 0; t < 30; ++t) {
    set_grad(p, target);
    sgd.step();
    auto g = (ref - target) + 0.1 * ref * ref.pow(2).sum() + 0.01 * ref;
    buf = buf.defined() ? 0.9 * buf + g : g;
    ref = ref - 0.1 * (g + 0.9 * buf);
  }
  EXPECT_LT(max_abs(p - ref), 1e-12);
  EXPECT_THROW(SGD({p}, {0.1, 0.0, 0.0, true, 0.0}), std::invalid_argument);
}

TEST(HybridTest, RoutesMatricesToMuonAndTheRestToAdamW) {
  auto W = randn({8, 4}, 9), b = randn({4}, 10);
  auto W_ref = W.clone(), b_ref = b.clone();
  MuonOptions mo;
  mo.lr = 0.02;
  mo.momentum = 0.5;
  mo.ortho = {OrthoKind::Exact};
  AdamWOptions ao{0.003, 0.9, 0.999, 1e-8, 0.0};
  Hybrid hybrid(split_for_muon({W, b}), mo, ao);
  Muon muon({W_ref}, mo);
  AdamW adamw({b_ref}, ao);
  for (int t = 0; t < 10; ++t) {
    for (auto* p : {&W, &b, &W_ref, &b_ref}) p->mutable_grad() = at::sin(*p * (t + 1));
    hybrid.set_lr_factor(0.5);
    muon.set_lr_factor(0.5);
    adamw.set_lr_factor(0.5);
    hybrid.step();
    muon.step();
    adamw.step();
  }
  EXPECT_EQ(max_abs(W - W_ref), 0.0);
  EXPECT_EQ(max_abs(b - b_ref), 0.0);
  EXPECT_EQ(hybrid.step_count(), 10);
}

// Saving after k steps and continuing in a fresh optimizer gives the same trajectory bit for bit.
template <typename Make>
void expect_resume_identical(Make make) {
  auto target = randn({6, 5}, 12);
  auto p1 = randn({6, 5}, 11), p2 = p1.clone();
  auto opt1 = make(p1);
  for (int t = 0; t < 25; ++t) set_grad(p1, target), opt1->step();
  auto p_mid = p1.clone();
  auto path = (std::filesystem::temp_directory_path() / "lorascope_state_test.pt").string();
  save_tensor_dict(opt1->state_dict(), path);
  for (int t = 0; t < 25; ++t) set_grad(p1, target), opt1->step();

  p2.copy_(p_mid);
  auto opt2 = make(p2);
  opt2->load_state_dict(load_tensor_dict(path));
  EXPECT_EQ(opt2->step_count(), 25);
  for (int t = 0; t < 25; ++t) set_grad(p2, target), opt2->step();
  EXPECT_EQ(max_abs(p1 - p2), 0.0) << opt1->name();
  std::filesystem::remove(path);
}

TEST(OptimizerStateTest, ResumeFromSavedStateContinuesTheSameTrajectory) {
  expect_resume_identical([](at::Tensor& p) {
    MuonOptions o;
    o.momentum = 0.9;
    o.ortho = {OrthoKind::NewtonSchulz, 0.0, 5};
    return std::make_unique<Muon>(std::vector<at::Tensor>{p}, o);
  });
  expect_resume_identical([](at::Tensor& p) {
    return std::make_unique<AdamW>(std::vector<at::Tensor>{p}, AdamWOptions{});
  });
  expect_resume_identical([](at::Tensor& p) {
    return std::make_unique<SGD>(std::vector<at::Tensor>{p}, SGDOptions{0.01, 0.9, 0.0, false, 0.0});
  });
}

TEST(OptimizerStateTest, LoadRejectsWrongShapesAndMissingFiles) {
  auto p = randn({3, 3}, 1);
  Muon muon({p}, MuonOptions{});
  TensorDict bad = {{"step", at::scalar_tensor(int64_t{4}, at::kLong)},
                    {"param.0.momentum", at::zeros({2, 2}, at::kDouble)}};
  EXPECT_THROW(muon.load_state_dict(bad), std::runtime_error);
  EXPECT_THROW(muon.load_state_dict({}), std::runtime_error);
  EXPECT_THROW(load_tensor_dict("/nonexistent/state.pt"), std::runtime_error);
}

TEST(LrScheduleTest, WarmupThenCosineFollowsFormula) {
  LrSchedule s{LrSchedule::Kind::Cosine, 10, 110, 0.1};
  EXPECT_DOUBLE_EQ(s.factor(0), 0.1);
  EXPECT_DOUBLE_EQ(s.factor(9), 1.0);
  EXPECT_DOUBLE_EQ(s.factor(10), 1.0);
  EXPECT_NEAR(s.factor(60), 0.1 + 0.9 * 0.5, 1e-15);
  EXPECT_NEAR(s.factor(110), 0.1, 1e-15);
  EXPECT_NEAR(s.factor(500), 0.1, 1e-15);
  LrSchedule c{LrSchedule::Kind::Constant, 4, 100, 0.0};
  EXPECT_DOUBLE_EQ(c.factor(1), 0.5);
  EXPECT_DOUBLE_EQ(c.factor(50), 1.0);
}

TEST(OptimizerArgumentsTest, RejectsInvalidSettings) {
  auto v = randn({5}, 1);
  EXPECT_THROW(Muon({v}, MuonOptions{}), std::invalid_argument);  // not a matrix
  MuonOptions nan_lr;
  nan_lr.lr = std::nan("");
  EXPECT_THROW(Muon({randn({3, 3}, 1)}, nan_lr), std::invalid_argument);
  MuonOptions neg;
  neg.lr = -1;
  EXPECT_THROW(Muon({randn({3, 3}, 1)}, neg), std::invalid_argument);
  EXPECT_THROW(AdamW({v}, AdamWOptions{0.1, 1.0, 0.999, 1e-8, 0.0}), std::invalid_argument);
  EXPECT_THROW(parse_lr_scaling("sqrt"), std::invalid_argument);
}

}  // namespace
}  // namespace lorascope
