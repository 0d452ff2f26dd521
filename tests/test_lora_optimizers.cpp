// NorMuon, Riemannian preconditioned LoRA (scaled SGD / AdamW), LoRA-FA, LoRA+ and the factor
// groups, each against its update rule written out in float64 in the test.
#include <gtest/gtest.h>

#include <cmath>

#include "optim/adamw.h"
#include "optim/adamw_hf.h"
#include "optim/factor_groups.h"
#include "optim/muon.h"
#include "optim/normuon.h"
#include "optim/riemannian_lora.h"
#include "optim/sgd.h"
#include "tests/error_of.h"
#include "tests/tensor_fixtures.h"

namespace lorascope {
namespace {

at::Tensor polar(const at::Tensor& M) {
  auto [U, S, Vh] = at::linalg_svd(M, false);
  return at::matmul(U, Vh);
}

// ---------------------------------------------------------------- NorMuon

TEST(NorMuonTest, MatchesAlgorithmOneWrittenOutWithExactT) {
  // M_t = G_t + mu M_{t-1}; O = U V^T of M (or of G + mu M, Nesterov); v = b2 v + (1 - b2) rowmean(O^2);
  // Ohat = O / (sqrt(v) + eps); D = c / ||Ohat||_F Ohat with c = 0.2 sqrt(mn) (paper) or ||O||_F;
  // W <- (1 - lr wd) W - lr scale D.
  for (auto rescale : {NorMuonRescale::Paper, NorMuonRescale::PreserveNorm}) {
    for (bool nesterov : {false, true}) {
      for (auto shape : std::vector<std::vector<int64_t>>{{40, 8}, {8, 40}}) {
        MuonOptions mo;
        mo.lr = 0.03;
        mo.momentum = 0.9;
        mo.nesterov = nesterov;
        mo.ortho = {OrthoKind::Exact};
        mo.lr_scaling = LrScaling::Original;
        mo.weight_decay = 0.1;
        NorMuonOptions no;
        no.beta2 = 0.9;
        no.eps = 1e-8;
        no.rescale = rescale;
        auto p = randn(shape, 1), target = randn(shape, 2);
        auto ref = p.clone(), buf = at::zeros_like(p), v = at::zeros({shape[0], 1}, at::kDouble);
        NorMuon opt({p}, mo, no);
        const double scale = std::sqrt(std::max(1.0, double(shape[0]) / double(shape[1])));
        for (int step = 0; step < 12; ++step) {
          p.mutable_grad() = (p - target) * (1 + 0.1 * step);
          auto g = (ref - target) * (1 + 0.1 * step);
          buf = g + 0.9 * buf;
          auto O = polar(nesterov ? g + 0.9 * buf : buf);
          v = 0.9 * v + 0.1 * (O * O).mean({1}, true);
          auto Ohat = O / (v.sqrt() + 1e-8);
          const double c = rescale == NorMuonRescale::Paper ? 0.2 * std::sqrt(double(shape[0] * shape[1]))
                                                           : at::linalg_vector_norm(O, 2).item<double>();
          auto D = Ohat * (c / at::linalg_vector_norm(Ohat, 2).item<double>());
          ref = ref * (1 - 0.03 * 0.1) - 0.03 * scale * D;
          opt.step();
        }
        EXPECT_LT(max_abs(p - ref), 1e-12) << (rescale == NorMuonRescale::Paper) << nesterov << shape[0];
      }
    }
  }
}

TEST(NorMuonTest, RowNormalisationBalancesRowsAndResumesFromState) {
  // With beta2 = 0, v is this step's row mean, so every row of the update gets the same norm:
  // on a tall B-like factor (out, r) whose orthogonalised rows differ a lot.
  auto O = polar(randn({30, 4}, 3) * at::linspace(0.1, 3.0, 30, at::kDouble).unsqueeze(1));
  at::Tensor v;
  NorMuonOptions o;
  o.beta2 = 0.0;
  auto D = normuon_normalize(O, v, o);
  auto row_norms = at::linalg_vector_norm(D, 2, {1});
  EXPECT_LT((row_norms.max() - row_norms.min()).item<double>(), 1e-6);
  EXPECT_GT(max_abs(at::linalg_vector_norm(O, 2, {1}) - row_norms.mean()), 0.1);  // O's rows did differ
  EXPECT_NEAR(at::linalg_vector_norm(D, 2).item<double>(), 0.2 * std::sqrt(120.0), 1e-12);
  // State: momentum and the (rows, 1) second moment round-trip; the resumed run continues the trajectory.
  MuonOptions mo;
  mo.ortho = {OrthoKind::Exact};
  auto p1 = randn({12, 5}, 4), p2 = p1.clone(), target = randn({12, 5}, 5);
  NorMuon a({p1}, mo, {}), b({p2}, mo, {});
  for (int s = 0; s < 3; ++s) {
    p1.mutable_grad() = p1 - target;
    a.step();
  }
  auto state = a.state_dict();
  ASSERT_TRUE(state.count("param.0.row_second_moment"));
  EXPECT_EQ(state.at("param.0.row_second_moment").sizes(), (std::vector<int64_t>{12, 1}));
  p2.copy_(p1.detach());
  b.load_state_dict(state);
  for (int s = 0; s < 3; ++s) {
    p1.mutable_grad() = p1 - target;
    p2.mutable_grad() = p2 - target;
    a.step();
    b.step();
  }
  EXPECT_LT(max_abs(p1 - p2), 1e-15);
  state["param.0.row_second_moment"] = at::zeros({12, 5}, at::kDouble);
  EXPECT_NE(error_of([&] { b.load_state_dict(state); }).find("row_second_moment: expected shape [12, 1]"),
            std::string::npos);
}

// ---------------------------------------------------------------- Riemannian preconditioning

// L = 1/2 sum_pairs ||s B A - T||^2: grad_A = s B^T R, grad_B = s R A^T, R = s B A - T.
struct Problem {
  std::vector<LoraPair> pairs;
  std::vector<at::Tensor> targets;
  void set_grads() {
    for (size_t i = 0; i < pairs.size(); ++i) {
      auto& [A, B, s] = pairs[i];
      auto R = s * at::matmul(B, A) - targets[i];
      A.mutable_grad() = s * at::matmul(B.t(), R);
      B.mutable_grad() = s * at::matmul(R, A.t());
    }
  }
};

Problem make_problem(uint64_t seed) {
  Problem p;
  const std::vector<std::array<int64_t, 3>> shapes = {{20, 4, 30}, {16, 3, 12}};  // (out, r, in)
  for (size_t i = 0; i < shapes.size(); ++i) {
    const auto [out, r, in] = shapes[i];
    p.pairs.push_back({randn({r, in}, seed + 10 * i, 0.3), randn({out, r}, seed + 10 * i + 1, 0.3), 2.0});
    p.targets.push_back(randn({out, in}, seed + 10 * i + 2));
  }
  return p;
}

std::vector<at::Tensor> factors(const Problem& p) {
  std::vector<at::Tensor> out;
  for (const auto& pr : p.pairs) {
    out.push_back(pr.A);
    out.push_back(pr.B);
  }
  return out;
}

TEST(RiemannianTest, PreconditionersAreTheDampedInversesAndPseudoInverseAtZero) {
  auto A = randn({4, 30}, 1), B = randn({20, 4}, 2), gA = randn({4, 30}, 3), gB = randn({20, 4}, 4);
  const auto I = at::eye(4, at::kDouble);
  for (double delta : {0.0, 1e-6, 1e-2}) {
    auto refA = at::matmul(at::linalg_inv(at::matmul(B.t(), B) + delta * I), gA);
    auto refB = at::matmul(gB, at::linalg_inv(at::matmul(A, A.t()) + delta * I));
    EXPECT_LT(max_abs(precondition_grad_A(gA, B, delta) - refA), 1e-12) << delta;
    EXPECT_LT(max_abs(precondition_grad_B(gB, A, delta) - refB), 1e-12) << delta;
  }
  // B = 0 (PEFT's init) with delta = 0: the pseudo-inverse of 0 is 0, as torch.linalg.pinv.
  EXPECT_EQ(max_abs(precondition_grad_A(gA, at::zeros({20, 4}, at::kDouble), 0.0)), 0.0);
  // Rank-deficient A: the pseudo-inverse on the range (float64 SVD reference).
  auto A2 = at::matmul(randn({4, 2}, 5), randn({2, 30}, 6));
  auto [U, S, Vh] = at::linalg_svd(at::matmul(A2, A2.t()), false);
  auto pinv = at::matmul(U.narrow(1, 0, 2) * S.narrow(0, 0, 2).reciprocal().unsqueeze(0), U.narrow(1, 0, 2).t());
  EXPECT_LT(max_abs(precondition_grad_B(gB, A2, 0.0) - at::matmul(gB, pinv)), 1e-9);
  // float32 gradients come back float32.
  EXPECT_EQ(precondition_grad_A(gA.to(at::kFloat), B.to(at::kFloat), 1e-2).scalar_type(), at::kFloat);
}

TEST(RiemannianTest, ScaledGdMatchesThePapersUpdateWithBothPreconditionersFromTheOldFactors) {
  // Scaled GD (Zhang & Pilanci Algorithm 1, with decay as the base SGD's L2):
  // A <- A - lr (B^T B + d I)^-1 gA, B <- B - lr gB (A A^T + d I)^-1, both from (A, B) before the step.
  for (double momentum : {0.0, 0.9}) {
    auto prob = make_problem(11), ref = make_problem(11);
    SGDOptions so;
    so.lr = 0.05;
    so.momentum = momentum;
    RiemannianOptions ro;
    ro.delta = 1e-3;
    RiemannianLora opt(prob.pairs, ro, std::make_unique<SGD>(factors(prob), so));
    EXPECT_EQ(opt.name(), momentum == 0 ? "riemannian_gd" : "riemannian_sgd");
    std::vector<at::Tensor> bufs(4);
    for (int step = 0; step < 15; ++step) {
      prob.set_grads();
      std::vector<at::Tensor> raw;
      for (const auto& pr : prob.pairs) raw.push_back(pr.B.grad().clone());
      opt.step();
      for (size_t i = 0; i < prob.pairs.size(); ++i) {  // the original gradients are back
        EXPECT_TRUE(at::equal(prob.pairs[i].B.grad(), raw[i]));
      }
      ref.set_grads();
      std::vector<at::Tensor> d;
      for (auto& [A, B, s] : ref.pairs) {
        const auto I = at::eye(A.size(0), at::kDouble);
        d.push_back(at::matmul(at::linalg_inv(at::matmul(B.t(), B) + 1e-3 * I), A.grad()));
        d.push_back(at::matmul(B.grad(), at::linalg_inv(at::matmul(A, A.t()) + 1e-3 * I)));
      }
      auto params = factors(ref);
      for (size_t k = 0; k < 4; ++k) {
        if (momentum != 0) {
          bufs[k] = bufs[k].defined() ? momentum * bufs[k] + d[k] : d[k].clone();
          d[k] = bufs[k];
        }
        params[k].sub_(0.05 * d[k]);
      }
    }
    for (size_t k = 0; k < 4; ++k) EXPECT_LT(max_abs(factors(prob)[k] - factors(ref)[k]), 1e-12) << k;
  }
}

TEST(RiemannianTest, ScaledAdamWPreconditionsTheGradientBeforeTheMoments) {
  // Scaled AdamW (the paper's Algorithm 2, PEFT's create_riemannian_optimizer with AdamW): the
  // moments accumulate P(g); the rest is torch.optim.AdamW.
  auto prob = make_problem(21), ref = make_problem(21);
  AdamWOptions ao;
  ao.lr = 0.01;
  ao.weight_decay = 0.05;
  RiemannianOptions ro;
  ro.delta = 1e-2;
  RiemannianLora opt(prob.pairs, ro, std::make_unique<AdamW>(factors(prob), ao));
  std::vector<at::Tensor> m(4), v(4);
  for (int k = 0; k < 4; ++k) {
    m[k] = at::zeros_like(factors(ref)[k]);
    v[k] = at::zeros_like(factors(ref)[k]);
  }
  for (int t = 1; t <= 15; ++t) {
    prob.set_grads();
    opt.step();
    ref.set_grads();
    std::vector<at::Tensor> g;
    for (auto& [A, B, s] : ref.pairs) {
      const auto I = at::eye(A.size(0), at::kDouble);
      g.push_back(at::matmul(at::linalg_inv(at::matmul(B.t(), B) + 1e-2 * I), A.grad()));
      g.push_back(at::matmul(B.grad(), at::linalg_inv(at::matmul(A, A.t()) + 1e-2 * I)));
    }
    auto params = factors(ref);
    for (size_t k = 0; k < 4; ++k) {
      m[k] = 0.9 * m[k] + 0.1 * g[k];
      v[k] = 0.999 * v[k] + 0.001 * g[k] * g[k];
      auto mhat = m[k] / (1 - std::pow(0.9, t));
      auto vhat = v[k] / (1 - std::pow(0.999, t));
      params[k].mul_(1 - 0.01 * 0.05).sub_(0.01 * mhat / (vhat.sqrt() + 1e-8));
    }
  }
  for (size_t k = 0; k < 4; ++k) EXPECT_LT(max_abs(factors(prob)[k] - factors(ref)[k]), 1e-12) << k;
  // Schedules reach the base optimizer; its state is the state.
  opt.set_lr_factor(0.5);
  EXPECT_DOUBLE_EQ(opt.base().lr(), 0.005);
  EXPECT_TRUE(opt.state_dict().count("param.0.exp_avg"));
}

TEST(LoraFaTest, FrozenAPreconditionedBAndLegacyAdamWAsPeft) {
  // PEFT 0.21 LoraFAOptimizer: gB <- (1/s^2) gB (A A^T + 1e-8 I)^-1; m, v of gB; W <- W - lr
  // sqrt(1 - b2^t)/(1 - b1^t) m / (sqrt(v) + eps); then W <- W - lr wd W. A never moves.
  auto prob = make_problem(31), ref = make_problem(31);
  std::vector<at::Tensor> Bs;
  for (const auto& pr : prob.pairs) Bs.push_back(pr.B);
  AdamWHFOptions ho;
  ho.lr = 0.02;
  ho.weight_decay = 0.1;
  RiemannianLora opt(prob.pairs, lora_fa_options(), std::make_unique<AdamWHF>(Bs, ho));
  std::vector<at::Tensor> m(2), v(2);
  const auto A0 = prob.pairs[0].A.clone();
  for (int t = 1; t <= 10; ++t) {
    prob.set_grads();
    for (auto& pr : prob.pairs) pr.A.mutable_grad() = at::Tensor();  // frozen: no gradient
    opt.step();
    ref.set_grads();
    for (size_t i = 0; i < 2; ++i) {
      auto& [A, B, s] = ref.pairs[i];
      const auto I = at::eye(A.size(0), at::kDouble);
      auto g = at::matmul(B.grad(), at::linalg_inv(at::matmul(A, A.t()) + 1e-8 * I)) / (s * s);
      m[i] = m[i].defined() ? 0.9 * m[i] + 0.1 * g : 0.1 * g;
      v[i] = v[i].defined() ? 0.999 * v[i] + 0.001 * g * g : 0.001 * g * g;
      const double step = 0.02 * std::sqrt(1 - std::pow(0.999, t)) / (1 - std::pow(0.9, t));
      B.sub_(step * m[i] / (v[i].sqrt() + 1e-6));
      B.sub_(0.02 * 0.1 * B);
    }
  }
  for (size_t i = 0; i < 2; ++i) EXPECT_LT(max_abs(prob.pairs[i].B - ref.pairs[i].B), 1e-12) << i;
  EXPECT_TRUE(at::equal(prob.pairs[0].A, A0));
  EXPECT_EQ(opt.name(), "riemannian_adamw_hf");
}

TEST(AdamWHFTest, DiffersFromTorchAdamWOnlyInEpsPlacementAndDecayOrder) {
  // With eps = 0 and wd = 0 the two are the same update; eps and wd make the documented differences.
  auto p1 = randn({6, 5}, 41), p2 = p1.clone(), g = randn({6, 5}, 42, 1e-3);
  AdamWHFOptions h;
  h.eps = 0;
  AdamWOptions a;
  a.eps = 1e-300;  // torch AdamW requires eps > 0
  a.weight_decay = 0;
  AdamWHF hf({p1}, h);
  AdamW torch_like({p2}, a);
  for (int t = 0; t < 5; ++t) {
    p1.mutable_grad() = g * (t + 1);
    p2.mutable_grad() = g * (t + 1);
    hf.step();
    torch_like.step();
  }
  EXPECT_LT(max_abs(p1 - p2), 1e-15);
  // One step from zero state with eps and decay: W - lr sqrt(1-b2)/(1-b1) m/(sqrt(v)+eps), then decay.
  auto p = randn({3, 3}, 43), p0 = p.clone();
  AdamWHFOptions o;
  o.lr = 0.1;
  o.eps = 1e-3;
  o.weight_decay = 0.5;
  AdamWHF one({p}, o);
  p.mutable_grad() = g.narrow(0, 0, 3).narrow(1, 0, 3);
  one.step();
  auto gg = p.grad();
  auto expected = p0 - 0.1 * std::sqrt(0.001) / 0.1 * (0.1 * gg) / ((0.001 * gg * gg).sqrt() + 1e-3);
  expected = expected - 0.1 * 0.5 * expected;
  EXPECT_LT(max_abs(p - expected), 1e-15);
}

// ---------------------------------------------------------------- LoRA+ and factor groups

TEST(FactorGroupsTest, LoraPlusStepsBAtRatioTimesTheLearningRateUnderASchedule) {
  auto prob = make_problem(51);
  auto make_sgd = [](std::vector<at::Tensor> params, double lr) -> std::unique_ptr<Optimizer> {
    SGDOptions o;
    o.lr = lr;
    return std::make_unique<SGD>(std::move(params), o);
  };
  auto opt = lora_plus(prob.pairs, 0.01, 16.0, make_sgd);
  EXPECT_EQ(opt->name(), "A:gd,B:gd");
  opt->set_lr_factor(0.5);
  prob.set_grads();
  const auto before = factors(prob);
  std::vector<at::Tensor> old, grads;
  for (const auto& t : before) {
    old.push_back(t.clone());
    grads.push_back(t.grad().clone());
  }
  opt->step();
  for (size_t k = 0; k < 4; ++k) {
    const double lr = k % 2 == 0 ? 0.005 : 0.08;  // A: 0.5 x 0.01; B: 0.5 x 16 x 0.01
    EXPECT_LT(max_abs(before[k] - (old[k] - lr * grads[k])), 1e-15) << k;
  }
  auto state = opt->state_dict();
  EXPECT_EQ(state.at("step").item<int64_t>(), 1);
  EXPECT_TRUE(state.count("A.step") && state.count("B.step"));
  EXPECT_NE(error_of([&] { lora_plus(prob.pairs, 0.01, 0.0, make_sgd); }).find("ratio must be a finite number > 0"),
            std::string::npos);
}

TEST(FactorGroupsTest, MuonOnBAndAdamWOnAStepsEachWithItsOwnRule) {
  auto prob = make_problem(61), ref = make_problem(61);
  std::vector<at::Tensor> As, Bs, refA, refB;
  for (size_t i = 0; i < 2; ++i) {
    As.push_back(prob.pairs[i].A);
    Bs.push_back(prob.pairs[i].B);
    refA.push_back(ref.pairs[i].A);
    refB.push_back(ref.pairs[i].B);
  }
  MuonOptions mo;
  mo.ortho = {OrthoKind::ThinExact};
  FactorGroups opt(std::make_unique<AdamW>(As, AdamWOptions{}), std::make_unique<Muon>(Bs, mo));
  EXPECT_EQ(opt.name(), "A:adamw,B:muon");
  AdamW ref_a(refA, AdamWOptions{});
  Muon ref_b(refB, mo);
  for (int t = 0; t < 5; ++t) {
    prob.set_grads();
    ref.set_grads();
    opt.step();
    ref_a.step();
    ref_b.step();
  }
  for (size_t k = 0; k < 4; ++k) EXPECT_LT(max_abs(factors(prob)[k] - factors(ref)[k]), 1e-15) << k;
  FactorGroups frozen_a(nullptr, std::make_unique<Muon>(Bs, mo));
  EXPECT_EQ(frozen_a.name(), "A:frozen,B:muon");
}

TEST(LoraOptimizerArgumentsTest, RejectInvalidSettingsWithTheReason) {
  auto prob = make_problem(71);
  auto base = [&] { return std::make_unique<SGD>(factors(prob), SGDOptions{}); };
  RiemannianOptions bad;
  bad.delta = -1;
  EXPECT_NE(error_of([&] { RiemannianLora(prob.pairs, bad, base()); }).find("delta must be a finite number >= 0"),
            std::string::npos);
  std::vector<LoraPair> swapped = {{prob.pairs[0].B, prob.pairs[0].A, 1.0}};
  EXPECT_NE(error_of([&] { RiemannianLora(swapped, {}, base()); }).find("expected A (r, in) and B (out, r)"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              RiemannianLora(prob.pairs, {}, std::make_unique<SGD>(std::vector<at::Tensor>{prob.pairs[0].A}, SGDOptions{}));
            }).find("not a parameter of the base optimizer"),
            std::string::npos);
  EXPECT_NE(error_of([&] { RiemannianLora({}, {}, base()); }).find("no (A, B) pairs"), std::string::npos);
  NorMuonOptions nb;
  nb.beta2 = 1.0;
  EXPECT_NE(error_of([&] { NorMuon({prob.pairs[0].A}, MuonOptions{}, nb); }).find("beta2 must be in [0, 1)"),
            std::string::npos);
  EXPECT_NE(error_of([&] { NorMuon({at::zeros({3}, at::kDouble)}, MuonOptions{}, {}); }).find("is not a matrix"),
            std::string::npos);
  EXPECT_EQ(parse_normuon_rescale("preserve_norm"), NorMuonRescale::PreserveNorm);
  EXPECT_THROW(parse_normuon_rescale("rms"), std::invalid_argument);
  EXPECT_NE(error_of([] { FactorGroups(nullptr, nullptr); }).find("no optimizer for A nor for B"), std::string::npos);
}

}  // namespace
}  // namespace lorascope
