// Spectral monitor math against full float64 SVDs of the explicit matrices.
#include <gtest/gtest.h>

#include <cmath>

#include "data/mf_target.h"
#include "models/factorization.h"
#include "models/spectral_stats.h"
#include "tests/tensor_fixtures.h"
#include "trainer/mf_monitor.h"

namespace lorascope {
namespace {

TEST(SpectralStatsTest, ChainSingularValuesEqualFullSvdOfTheProduct) {
  struct Case { int64_t m, n, r; int depth; };
  for (auto c : std::vector<Case>{{60, 70, 5, 2}, {70, 60, 8, 2}, {40, 50, 4, 3}, {30, 20, 6, 5},
                                   {10, 12, 3, 2}}) {
    std::vector<at::Tensor> f;
    for (int k = 0; k < c.depth; ++k) {
      f.push_back(randn({k == 0 ? c.m : c.r, k == c.depth - 1 ? c.n : c.r}, 100 + k + c.m));
    }
    at::Tensor W = f[0];
    for (int k = 1; k < c.depth; ++k) W = at::matmul(W, f[k]);
    auto full = at::linalg_svdvals(W).narrow(0, 0, c.r);
    for (const auto& ours : {chain_singular_values(f), chain_singular_values_reference(f)}) {
      ASSERT_EQ(ours.size(0), c.r);
      EXPECT_LT(((ours - full).abs() / full.max()).max().item<double>(), 1e-12)
          << c.m << "x" << c.n << " r" << c.r << " L" << c.depth;
    }
  }
}

TEST(SpectralStatsTest, RankDeficientProductHasZeroTrailingValues) {
  auto A = at::zeros({60, 5}, at::kDouble);
  A.narrow(1, 0, 2).copy_(randn({60, 2}, 1));
  for (const auto& sv : {chain_singular_values({A, randn({5, 70}, 2)}),
                         chain_singular_values_reference({A, randn({5, 70}, 2)})}) {
    EXPECT_LT(sv.narrow(0, 2, 3).max().item<double>(), 1e-12);
    EXPECT_GT(sv[1].item<double>(), 1e-3);
  }
  // One matrix: its own singular values, for both paths and both orientations.
  auto M = randn({50, 6}, 3);
  auto full = at::linalg_svdvals(M);
  EXPECT_LT((chain_singular_values({M}) - full).abs().max().item<double>(), 1e-12);
  EXPECT_LT((chain_singular_values({M.t().contiguous()}) - full).abs().max().item<double>(), 1e-12);
  EXPECT_LT((chain_singular_values_reference({M}) - full).abs().max().item<double>(), 1e-12);
}

TEST(SpectralStatsTest, EffectiveAndStableRankFollowTheirDefinitions) {
  EXPECT_NEAR(effective_rank({1, 1, 1, 1}), 4.0, 1e-14);
  EXPECT_NEAR(effective_rank({2, 0, 0}), 1.0, 1e-14);
  EXPECT_EQ(effective_rank({0, 0}), 0.0);
  // exp(H(p)) with p = (3, 1) / 4 written out.
  const double h = -(0.75 * std::log(0.75) + 0.25 * std::log(0.25));
  EXPECT_NEAR(effective_rank({3, 1}), std::exp(h), 1e-14);
  auto st = stats_from_sv({3, 1});
  EXPECT_NEAR(st.stable_rank, 10.0 / 9.0, 1e-14);
  EXPECT_NEAR(st.fro, std::sqrt(10.0), 1e-14);
  auto M = randn({9, 7}, 3);
  auto ms = matrix_stats(M);
  EXPECT_NEAR(ms.fro, at::linalg_norm(M).item<double>(), 1e-12);
}

TEST(MFMonitorTest, CoreVariablesMatchExplicitFormulas) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
  auto target = make_target(20, 25, {4, 2, 1}, gen, at::kDouble);
  for (int depth : {2, 3}) {
    auto f = Factorization::random_init(20, 25, 4, depth, 0.5, FactorInit::BZero, gen,
                                        at::TensorOptions().dtype(at::kDouble));
    f.factors()[depth - 1] = randn({4, 25}, 9);  // make the product nonzero
    auto W = f.product();
    // V_perp from a full QR of [V_k | random]: an independent orthonormal complement.
    auto Qfull = std::get<0>(at::linalg_qr(at::cat({target.V, randn({25, 22}, 7)}, 1), "complete"));
    auto Vperp = Qfull.narrow(1, 3, 22);
    auto G = at::matmul(at::matmul(target.U.t(), W), target.V);
    auto snap = mf_core_variables(f, target);
    for (int i = 0; i < 3; ++i) {
      EXPECT_NEAR(snap.d[i], G[i][i].item<double>(), 1e-12);
      // d_i is also the projection u_i^T W v_i.
      EXPECT_NEAR(snap.d[i], at::dot(target.U.select(1, i), at::mv(W, target.V.select(1, i))).item<double>(), 1e-12);
    }
    EXPECT_NEAR(snap.off_diag, at::linalg_norm(G - at::diag(at::diagonal(G))).item<double>(), 1e-12);
    EXPECT_NEAR(snap.x_zperp, at::linalg_norm(at::matmul(at::matmul(target.U.t(), W), Vperp)).item<double>(), 1e-10);
  }
}

TEST(MFTargetTest, RandomTargetHasRequestedSpectrumAndOrthonormalFactors) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(0);
  auto t = make_target(60, 70, {8, 5, 3, 1.5, 0.7}, gen, at::kDouble);
  auto sv = at::linalg_svdvals(t.Y).narrow(0, 0, 5);
  EXPECT_LT((sv - at::tensor(std::vector<double>{8, 5, 3, 1.5, 0.7}, at::kDouble)).abs().max().item<double>(), 1e-12);
  EXPECT_LT((at::matmul(t.U.t(), t.U) - at::eye(5, at::kDouble)).abs().max().item<double>(), 1e-13);
  EXPECT_NEAR(t.best_rank_loss(3), 0.5 * (1.5 * 1.5 + 0.7 * 0.7), 1e-14);
  EXPECT_THROW(make_target(3, 4, {1, 1, 1, 1}, gen, at::kDouble), std::invalid_argument);
}

}  // namespace
}  // namespace lorascope
