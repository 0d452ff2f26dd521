// The theorems of lora-rank-accuracy-gradient-flow.md, asserted on lorascope's simulations:
// closed-form trace-squared trajectories (App. C, E), the zero-loss limit (32), the relative
// error (33)-(34), Eckart-Young under spectral init (53)-(54, App. I), and Algorithm 1's
// first-order approach to the flow (Theorem 2.4).
#include <gtest/gtest.h>

#include <torch/csrc/autograd/autograd.h>

#include <cmath>
#include <cstdio>

#include "models/lora_flow_closed_form.h"
#include "models/lora_flow_problem.h"
#include "optim/lora_alternating_gd.h"
#include "tests/memory_sink.h"
#include "tests/tensor_fixtures.h"
#include "trainer/rank_accuracy_recipe.h"
#include "trainer/rank_accuracy_schema.h"

namespace lorascope {
namespace {

using nlohmann::json;
const auto f64 = at::TensorOptions().dtype(at::kDouble);

struct Run {
  RankAccuracyOutcome outcome;
  std::vector<json> records;
  const json& summary() const { return outcome.summary; }
};

Run run(const std::vector<std::string>& sets) {
  auto specs = resolve_runs_json(json::object(), "test", sets, rank_accuracy_schema(),
                                 check_rank_accuracy_config);
  const auto cfg = RankAccuracyConfig::from_json(specs.at(0).config);
  MemorySink sink;
  Run r;
  r.outcome = train_rank_accuracy(cfg, sink);
  r.records = std::move(sink.records);
  EXPECT_EQ(r.outcome.status, "completed") << r.summary().dump();
  return r;
}

TEST(RankAccuracyTest, LoraGradientsMatchAutograd) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  for (auto kind : {LoraLoss::TraceSquared, LoraLoss::Frobenius}) {
    const int64_t n = 7, m = kind == LoraLoss::TraceSquared ? 7 : 5, r = 2;
    const LoraFlowProblem P(at::randn({n, m}, gen, f64), kind);
    const auto B = at::randn({n, r}, gen, f64), A = at::randn({r, m}, gen, f64);
    auto Bl = B.clone().set_requires_grad(true), Al = A.clone().set_requires_grad(true);
    const auto E = P.W0() - at::matmul(Bl, Al);
    const auto loss = kind == LoraLoss::TraceSquared ? 0.5 * E.trace().square() : 0.5 * E.square().sum();
    const auto g = torch::autograd::grad({loss}, {Bl, Al});
    const auto [gB, gA] = P.lora_grads(B, A);
    EXPECT_NEAR(P.lora_loss(B, A), loss.item<double>(), 1e-12);
    EXPECT_LT(max_abs(gB - g[0]), 1e-12);
    EXPECT_LT(max_abs(gA - g[1]), 1e-12);
    // The full-rank gradient is the LoRA one's source: grad_B = grad f(BA) A^T.
    EXPECT_LT(max_abs(at::matmul(P.grad(at::matmul(B, A)), A.t()) - gB), 1e-12);
  }
  EXPECT_THROW(LoraFlowProblem(at::zeros({3, 4}, f64), LoraLoss::TraceSquared), std::invalid_argument);
}

TEST(RankAccuracyTest, SpectralInitIsDiagonalInW0sSingularBasis) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(4);
  const LoraFlowProblem P(at::randn({6, 5}, gen, f64), LoraLoss::Frobenius);
  const auto [B0, A0] = P.init(3, LoraInit::Spectral, 0.5, gen);
  EXPECT_EQ(max_abs(B0), 0.0);
  const auto V = std::get<2>(at::linalg_svd(P.W0(), false)).t();  // (m, m)
  const auto AV = at::matmul(A0, V);                                // (r, m): diag(x0) padded
  EXPECT_LT(max_abs(AV * (1 - at::eye(3, 5, f64))), 1e-12);
  EXPECT_GT(AV.diagonal().abs().min().item<double>(), 0.0);
}

// a(t), p(t), q(t) (eq. 313, 373-374) against RK4 with h = 1e-3 for Tr(W0) of either sign:
// the LoRA state is Y = q c X0^T, X = p X0, and U follows eq. (20).
TEST(RankAccuracyTest, TraceSquaredClosedFormMatchesRk4) {
  bool seen_positive = false, seen_negative = false;
  for (int seed = 0; seed < 20 && !(seen_positive && seen_negative); ++seed) {
    auto r = run({"seed=" + std::to_string(seed), "task.n=6", "task.m=6", "task.rank=2",
                  "solver.method=rk4", "solver.dt=0.001", "train.t_end=1.5", "train.log_every_t=0.25"});
    const double c = r.summary()["trace_w0"];
    if ((c > 0 && seen_positive) || (c < 0 && seen_negative)) continue;
    (c > 0 ? seen_positive : seen_negative) = true;
    ASSERT_EQ(r.records.size(), 7u);
    for (const auto& rec : r.records) {
      EXPECT_NEAR(rec["a"].get<double>(), rec["a_closed"].get<double>(), 1e-8) << "t " << rec["t"];
      EXPECT_LT(rec["closed_gap"].get<double>(), 1e-8) << "t " << rec["t"] << " c " << c;
      EXPECT_LT(rec["full_gap"].get<double>(), 1e-8) << "t " << rec["t"];
    }
    // The trace residual really moved: a(1.5) is a small fraction of a(0) = c.
    EXPECT_LT(std::abs(r.records.back()["a"].get<double>()), 0.05 * std::abs(c));
  }
  EXPECT_TRUE(seen_positive && seen_negative);
}

// Typo check on App. C: (394) and (398)-(402) print sqrt(2 ||X0|| ...) where (392) has
// sqrt(2) ||X0|| sqrt(...). The corrected limits are p -> sqrt(N + sqrt(k1)) / (sqrt(2) ||X0||)
// and q -> 2 / (sqrt(2) ||X0|| sqrt(N + sqrt(k1))), whose product 1 / N gives eq. (405).
TEST(RankAccuracyTest, ClosedFormLimitsFollowTheCorrectedAlgebra) {
  for (double c : {2.5, -0.3}) {
    const double N = 1.7, k1 = N * N + 4 * c * c, x = std::sqrt(N);
    const TraceSquaredFlow f(c, N);
    EXPECT_NEAR(f.a(0), c, 1e-12);
    EXPECT_NEAR(f.p(0), 1.0, 1e-12);
    EXPECT_NEAR(f.q(0), 0.0, 1e-15);
    EXPECT_NEAR(f.p(60), std::sqrt(N + std::sqrt(k1)) / (std::sqrt(2.0) * x), 1e-12);
    EXPECT_NEAR(f.q(60), 2 / (std::sqrt(2.0) * x * std::sqrt(N + std::sqrt(k1))), 1e-12);
    EXPECT_NEAR(f.p(60) * f.q(60), 1 / N, 1e-12);
    // The printed (399) differs from the limit (the paper's final result (405) does not use it).
    EXPECT_GT(std::abs(f.p(60) - std::sqrt(N + std::sqrt(k1)) / std::sqrt(2 * x)), 1e-3);
    EXPECT_TRUE(std::isfinite(f.p(1e4)) && std::isfinite(f.a(1e4)));  // no overflow
  }
  EXPECT_THROW(TraceSquaredFlow(0.0, 1.0), std::invalid_argument);
}

// Theorem 2.7 and eq. (32)-(33): for every r < n the flow reaches zero loss at
// Y X = (c / ||X0||^2) X0^T X0, the full-rank flow reaches (c / n) I, and their relative
// distance is eq. (33); at r = 1 it is sqrt(n - 1).
TEST(RankAccuracyTest, TraceSquaredLimitHasZeroLossAndEq33Error) {
  const int n = 6;
  for (int r : {1, 2, 3, 5}) {
    auto run_r = run({"seed=1", "task.n=6", "task.m=6", "task.rank=" + std::to_string(r),
                      "solver.method=rk45", "train.t_end=30", "train.log_every_t=30"});
    const auto& s = run_r.summary();
    // Zero up to the integrator: a(30) ~ 1e-10 after starting at Tr(W0) ~ 1 (rtol 1e-10).
    EXPECT_LT(s["final_loss"].get<double>(), 1e-16) << "r " << r;
    EXPECT_LT(s["limit_gap_eq32"].get<double>(), 1e-8) << "r " << r;
    EXPECT_NEAR(s["final_rel_error"].get<double>(), s["rel_error_eq33"].get<double>(), 1e-8);
    if (r == 1) {
      EXPECT_NEAR(s["final_rel_error"].get<double>(), std::sqrt(n - 1.0), 1e-8);
    }
    // Y X has rank r: its r-th singular value is far from 0.
    EXPECT_GT(s["final_sv"][r - 1].get<double>(), 1e-3);
  }
}

// eq. (34): over X0_ij ~ N(0, sigma^2), E[R^2] = (n^2 + n - 2) / (n r + 2). Two parts, to stay
// fast: 40 full RK45 flows to t = 5 (n = 12, r = 3) whose final R equals eq. (33) sample by
// sample, then eq. (33) on 20000 draws, whose mean has a standard error of ~0.1% (the relative
// standard deviation of R^2 is ~0.14 at this size), against eq. (34) within 3%.
TEST(RankAccuracyTest, MonteCarloMeanSquaredErrorMatchesEq34) {
  auto r = run({"seed=5", "task.n=12", "task.m=12", "task.rank=3", "task.sigma=0.4",
                "solver.method=rk45", "solver.rtol=1e-6", "solver.atol=1e-9", "train.t_end=5",
                "train.log_every_t=5", "mc.samples=40"});
  const auto& s = r.summary();
  ASSERT_EQ(r.records.size(), 40u);
  EXPECT_LT(s["max_abs_R_minus_eq33"].get<double>(), 1e-4);
  std::printf("40 flows: mean R^2 %.4f, max |R - eq. 33| %.2e\n", s["mean_R2"].get<double>(),
              s["max_abs_R_minus_eq33"].get<double>());
  EXPECT_NEAR(s["expected_R2_eq34"].get<double>(), (144.0 + 12 - 2) / (36 + 2), 1e-12);
  EXPECT_LE(s["mean_R"].get<double>(), std::sqrt(s["mean_R2"].get<double>()));  // Jensen, eq. (35)

  auto gen = at::make_generator<at::CPUGeneratorImpl>(11);
  for (const auto& [n, rank] : std::vector<std::pair<int64_t, int64_t>>{{12, 3}, {8, 2}, {20, 1}}) {
    const int samples = 20000;
    double sum = 0;
    for (int i = 0; i < samples; ++i) {
      const double R = relative_error_limit(at::randn({rank, n}, gen, f64) * 0.4);
      sum += R * R;
      if (rank == 1) {
        ASSERT_NEAR(R, std::sqrt(n - 1.0), 1e-9);  // X0^T X0 is rank one
      }
    }
    const double mean = sum / samples, expected = expected_squared_relative_error(n, rank);
    std::printf("E[R^2] n %lld r %lld: Monte Carlo %.4f, eq. (34) %.4f\n", static_cast<long long>(n),
                static_cast<long long>(rank), mean, expected);
    EXPECT_NEAR(mean / expected, 1.0, 0.03) << "n " << n << " r " << rank << " mean " << mean;
  }
}

// Theorem 2.11: from spectral init, each mode y_i x_i follows the scalar closed form
// (eq. 50, 662-663) and tends to s_i, so the loss tends to the Eckart-Young value
// 1/2 sum_{i>r} s_i^2 and B A to U_r Sigma_r V_r^T (eq. 53-54).
TEST(RankAccuracyTest, FrobeniusSpectralInitReachesEckartYoung) {
  auto r = run({"seed=2", "task.loss=frobenius", "task.n=8", "task.m=6", "task.rank=2",
                "task.w0=spectrum", "task.target_sv=[4, 3, 2, 1, 0.5]", "task.init=spectral",
                "solver.method=rk45", "train.t_end=20", "train.log_every_t=0.5"});
  const auto& s = r.summary();
  EXPECT_LT(s["max_closed_gap"].get<double>(), 1e-8);
  const double ey = 0.5 * (4 + 1 + 0.25);
  EXPECT_NEAR(s["eckart_young_loss"].get<double>(), ey, 1e-12);
  EXPECT_NEAR(s["final_loss"].get<double>(), ey, 1e-9);
  EXPECT_NEAR(s["final_modes"][0].get<double>(), 4.0, 1e-9);
  EXPECT_NEAR(s["final_modes"][1].get<double>(), 3.0, 1e-9);
  EXPECT_NEAR(s["final_sv"][0].get<double>(), 4.0, 1e-9);
  EXPECT_NEAR(s["final_sv"][1].get<double>(), 3.0, 1e-9);
  // The full-rank reference reaches W0 itself: zero loss.
  EXPECT_LT(s["final_loss_full"].get<double>(), 1e-12);
  // Early on the loss is well above Eckart-Young: the test watches a real trajectory.
  EXPECT_GT(r.records[1]["loss"].get<double>(), ey + 1.0);
}

// Theorem 2.4 with rates: Algorithm 1's iterates at t = 1 differ from the exact flow (closed
// form) by O(alpha) for every lambda and k; halving alpha halves the gap. lambda = 1, k = 1 is
// plain simultaneous GD, i.e. the Euler step of the flow.
TEST(RankAccuracyTest, Algorithm1ApproachesTheFlowAtFirstOrder) {
  const std::vector<std::pair<double, int>> variants = {{1.0, 1}, {0.0, 1}, {0.5, 2}, {0.0, 3}};
  for (const auto& [lambda, k] : variants) {
    auto gap = [&, lambda = lambda, k = k](double alpha) {
      auto r = run({"seed=3", "task.n=6", "task.m=6", "task.rank=2", "solver.method=algorithm1",
                    "solver.lambda=" + json(lambda).dump(), "solver.k=" + std::to_string(k),
                    "solver.dt=" + json(alpha).dump(), "train.t_end=0.96", "train.log_every_t=0.96"});
      return r.records.back()["closed_gap"].get<double>();
    };
    const double g1 = gap(0.004), g2 = gap(0.002);
    std::printf("algorithm 1 lambda %.1f k %d: gap %.3e (alpha 0.004) %.3e (0.002) ratio %.3f\n",
                lambda, k, g1, g2, g1 / g2);
    EXPECT_GT(g1, 1e-6) << "lambda " << lambda << " k " << k;
    EXPECT_NEAR(g1 / g2, 2.0, 0.25) << "lambda " << lambda << " k " << k << " gaps " << g1 << " " << g2;
  }
  // lambda = 1, k = 1 is exactly the Euler step of the flow.
  auto alg = run({"seed=3", "task.n=6", "task.m=6", "solver.method=algorithm1", "solver.dt=0.01",
                  "train.t_end=0.5", "train.log_every_t=0.5"});
  auto euler = run({"seed=3", "task.n=6", "task.m=6", "solver.method=euler", "solver.dt=0.01",
                    "train.t_end=0.5", "train.log_every_t=0.5"});
  EXPECT_NEAR(alg.records.back()["a"].get<double>(), euler.records.back()["a"].get<double>(), 1e-14);
  EXPECT_NEAR(alg.records.back()["closed_gap"].get<double>(),
              euler.records.back()["closed_gap"].get<double>(), 1e-14);
}

TEST(RankAccuracyTest, AlternatingGdSequentialUsesTheNewB) {
  // g = 1/2 ||W0 - BA||^2 with scalars: one sequential step updates A with the new B.
  const auto W0 = at::full({1, 1}, 2.0, f64);
  const LoraFlowProblem P(W0, LoraLoss::Frobenius);
  auto gB = [&](const at::Tensor& B, const at::Tensor& A) { return P.lora_grads(B, A).first; };
  auto gA = [&](const at::Tensor& B, const at::Tensor& A) { return P.lora_grads(B, A).second; };
  at::Tensor B = at::zeros({1, 1}, f64), A = at::ones({1, 1}, f64);
  alternating_gd_iteration(B, A, gB, gA, {0.5, 0.0, 1});
  EXPECT_DOUBLE_EQ(B.item<double>(), 1.0);  // 0 + 0.5 * (2 - 0) * 1
  EXPECT_DOUBLE_EQ(A.item<double>(), 1.5);  // 1 + 0.5 * 1 * (2 - 1 * 1)
  B = at::zeros({1, 1}, f64), A = at::ones({1, 1}, f64);
  alternating_gd_iteration(B, A, gB, gA, {0.5, 1.0, 1});
  EXPECT_DOUBLE_EQ(A.item<double>(), 1.0);  // simultaneous: the old B = 0 gives no A update
  EXPECT_THROW(alternating_gd_iteration(B, A, gB, gA, {0.5, 1.5, 1}), std::invalid_argument);
}

TEST(RankAccuracyTest, ConfigChecksNameTheKey) {
  auto expect_error = [](const std::vector<std::string>& sets, const std::string& key) {
    try {
      resolve_runs_json(json::object(), "t", sets, rank_accuracy_schema(), check_rank_accuracy_config);
      ADD_FAILURE() << "accepted " << json(sets).dump();
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
    }
  };
  expect_error({"task.m=5"}, "task.m");
  expect_error({"task.rank=8"}, "task.rank");
  expect_error({"solver.method=rk4", "solver.dt=0.03", "train.t_end=0.3", "train.log_every_t=0.1"}, "train.log_every_t");
  expect_error({"solver.method=algorithm1", "solver.k=3", "solver.dt=0.01", "train.t_end=1"}, "train.t_end");
  expect_error({"task.loss=frobenius", "mc.samples=10"}, "mc.samples");
  expect_error({"solver.lambda=2"}, "solver.lambda");
  expect_error({"task.w0=spectrum", "task.target_sv=[1, 2]"}, "task.target_sv");
  expect_error({"solver.methd=rk4"}, "solver.method");
}

}  // namespace
}  // namespace lorascope
