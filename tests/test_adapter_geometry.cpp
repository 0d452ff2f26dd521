// Adapter geometry (models/adapter_geometry.h, models/principal_angles.h) against direct float64
// computations on the full matrices: a full SVD of W + s B A, projector differences for
// principal angles, PEFT's intruder rule applied to the full SVDs.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "models/adapter_geometry.h"
#include "models/principal_angles.h"
#include "tests/tensor_fixtures.h"
#include "trainer/geometry_monitor.h"

namespace lorascope {
namespace {

at::Tensor orthonormal(int64_t m, int64_t k, uint64_t seed) {
  return std::get<0>(at::linalg_qr(randn({m, k}, seed), "reduced"));
}

// W = Q_U diag(s) Q_V^T with s_i = scale * decay^i (a structured spectrum with gaps), or a
// Gaussian matrix when decay == 0.
at::Tensor base_matrix(int64_t m, int64_t n, double decay, uint64_t seed) {
  if (decay == 0) return randn({m, n}, seed) / std::sqrt(static_cast<double>(n));
  const int64_t p = std::min(m, n);
  auto s = at::pow(at::full({p}, decay, at::kDouble), at::arange(p, at::kDouble)) * 3.0;
  return at::matmul(orthonormal(m, p, seed) * s.unsqueeze(0), orthonormal(n, p, seed + 1).t());
}

// Singular values of P1 - P2 (P = Q Q^T): the sines of the principal angles, each twice, plus
// zeros. Exact to rounding even for tiny angles, unlike arccos of cosines.
std::vector<double> sines_from_projectors(const at::Tensor& Q1, const at::Tensor& Q2, int64_t q) {
  auto d = at::linalg_svdvals(at::matmul(Q1, Q1.t()) - at::matmul(Q2, Q2.t()));
  std::vector<double> out;
  for (int64_t i = 0; i < 2 * q; i += 2) out.push_back(d[i].item<double>());
  std::sort(out.begin(), out.end());
  return out;
}

double max_abs_diff(const at::Tensor& a, const at::Tensor& b) { return (a - b).abs().max().item<double>(); }

TEST(PrincipalAnglesTest, RecoverKnownAnglesIncludingTinyOnes) {
  const int64_t m = 40;
  const std::vector<double> theta = {1e-10, 1e-6, 0.3, 1.2, M_PI / 2};
  auto Q = orthonormal(m, 2 * 5, 7);
  auto Q1 = Q.narrow(1, 0, 5);
  auto W = Q.narrow(1, 5, 5);
  auto Q2 = at::empty({m, 5}, at::kDouble);
  for (int i = 0; i < 5; ++i) Q2.select(1, i).copy_(Q1.select(1, i) * std::cos(theta[i]) + W.select(1, i) * std::sin(theta[i]));
  auto ang = principal_angles(Q1, Q2);
  ASSERT_EQ(ang.size(0), 5);
  for (int i = 0; i < 5; ++i) EXPECT_NEAR(ang[i].item<double>(), theta[i], 1e-14 + 1e-13 * theta[i]) << i;
  // Symmetric, and a basis of different width gives min(a, b) angles.
  EXPECT_LT(max_abs_diff(principal_angles(Q2, Q1), ang), 1e-14);
  auto part = principal_angles(Q1, Q2.narrow(1, 2, 2));
  ASSERT_EQ(part.size(0), 2);
  EXPECT_NEAR(part[0].item<double>(), 0.3, 1e-13);
  EXPECT_NEAR(part[1].item<double>(), 1.2, 1e-13);
  EXPECT_EQ(principal_angles(Q1, Q2.narrow(1, 0, 0)).size(0), 0);
}

TEST(PrincipalAnglesTest, RandomSubspacesMatchProjectorDifference) {
  for (auto [m, a, b] : std::vector<std::array<int64_t, 3>>{{30, 4, 4}, {50, 8, 3}, {25, 2, 6}}) {
    auto Q1 = orthonormal(m, a, 100 + m), Q2 = orthonormal(m, b, 200 + m);
    auto ang = principal_angles(Q1, Q2);
    const int64_t q = std::min(a, b);
    ASSERT_EQ(ang.size(0), q);
    if (a == b) {  // with equal widths, P1 - P2 has exactly the sines, twice each
      auto sines = sines_from_projectors(Q1, Q2, q);
      for (int64_t i = 0; i < q; ++i) EXPECT_NEAR(std::sin(ang[i].item<double>()), sines[i], 1e-13);
    }
    // Cosines: singular values of Q1^T Q2, computed independently here in float64.
    auto cos = at::linalg_svdvals(at::matmul(Q1.t(), Q2));
    for (int64_t i = 0; i < q; ++i) EXPECT_NEAR(std::cos(ang[i].item<double>()), cos[i].item<double>(), 1e-13);
  }
}

TEST(PrincipalAnglesTest, GrassmannGridIsTheLoraPaperFormula) {
  auto Q1 = orthonormal(60, 6, 11), Q2 = orthonormal(60, 4, 12);
  Q2.narrow(1, 0, 2).copy_(Q1.narrow(1, 1, 2));  // share two directions
  Q2 = std::get<0>(at::linalg_qr(Q2, "reduced"));
  auto grid = grassmann_similarity_grid(Q1, Q2);
  ASSERT_EQ(grid.size(0), 6);
  ASSERT_EQ(grid.size(1), 4);
  for (int64_t i = 1; i <= 6; ++i) {
    for (int64_t j = 1; j <= 4; ++j) {
      auto M = at::matmul(Q1.narrow(1, 0, i).t(), Q2.narrow(1, 0, j));
      const double direct = at::linalg_matrix_norm(M, "fro").pow(2).item<double>() / std::min(i, j);
      EXPECT_NEAR(grid[i - 1][j - 1].item<double>(), direct, 1e-14) << i << "," << j;
    }
  }
  EXPECT_NEAR(grassmann_similarity(Q1, Q2), grid[5][3].item<double>(), 1e-14);
  EXPECT_NEAR(grassmann_similarity(Q1, Q1), 1.0, 1e-14);
  auto Q = orthonormal(60, 8, 13);
  EXPECT_NEAR(grassmann_similarity(Q.narrow(1, 0, 4), Q.narrow(1, 4, 4)), 0.0, 1e-14);
}

TEST(AdapterGeometryTest, LowRankSvdEqualsFullSvdOfTheUpdate) {
  for (auto [m, n, r] : std::vector<std::array<int64_t, 3>>{{70, 50, 6}, {40, 90, 8}, {33, 33, 4}}) {
    auto B = randn({m, r}, m), A = randn({r, n}, n);
    const double s = -1.7;  // a negative scaling flips signs, never singular values
    auto d = low_rank_svd(B, A, s);
    auto dW = at::matmul(B, A) * s;
    auto full = at::linalg_svdvals(dW).narrow(0, 0, r);
    EXPECT_LT(max_abs_diff(d.S, full) / full[0].item<double>(), 1e-13);
    EXPECT_EQ(d.rank, r);
    // The factored SVD reproduces delta W.
    EXPECT_LT(max_abs_diff(at::matmul(d.U * d.S.unsqueeze(0), d.V.t()), dW) / full[0].item<double>(), 1e-13);
  }
  auto B = randn({50, 5}, 1);
  B.narrow(1, 3, 2).zero_();
  EXPECT_EQ(low_rank_svd(B, randn({5, 40}, 2), 2.0).rank, 3);
  EXPECT_EQ(low_rank_svd(at::zeros({50, 5}, at::kDouble), randn({5, 40}, 2), 2.0).rank, 0);  // PEFT init
}

// PEFT's rule on full SVDs: cos_i = max_j |u_i(W')^T u_j(W)| for the top k of W' = W + s B A.
struct Reference {
  at::Tensor sv, cos, U;
  int64_t intruders = 0;
  double intruder_sv = 0;
};
Reference reference(const at::Tensor& W, const at::Tensor& B, const at::Tensor& A, double s, int64_t k, double eps) {
  auto [Uw, Sw, Vwh] = at::linalg_svd(W, false);
  auto [Um, Sm, Vmh] = at::linalg_svd(W + s * at::matmul(B, A), false);
  Reference ref;
  ref.sv = Sm.narrow(0, 0, k);
  ref.U = Um.narrow(1, 0, k);
  ref.cos = std::get<0>(at::matmul(Um.t(), Uw).abs().max(1)).narrow(0, 0, k);
  for (int64_t i = 0; i < k; ++i) {
    if (ref.cos[i].item<double>() < eps) {
      ++ref.intruders;
      ref.intruder_sv = std::max(ref.intruder_sv, ref.sv[i].item<double>());
    }
  }
  return ref;
}

TEST(AdapterGeometryTest, UpdatedTopSvdMatchesFullSvdForEveryShapeAndSolver) {
  struct Case { int64_t m, n, r; double decay; };
  for (auto c : std::vector<Case>{{90, 60, 4, 0.9}, {60, 90, 4, 0.9}, {70, 70, 8, 0.85}, {90, 60, 4, 0.0},
                                   {60, 90, 6, 0.0}, {200, 120, 8, 0.95}}) {
    auto W = base_matrix(c.m, c.n, c.decay, 31 + c.m);
    auto B = randn({c.m, c.r}, 41 + c.n) * 0.3, A = randn({c.r, c.n}, 51 + c.r) * 0.3;
    const double s = 2.0;
    const int64_t k = 10;
    const auto base = base_spectrum(W);
    const auto ref = reference(W, B, A, s, k, 0.5);
    for (auto solver : {TopSvdSolver::kAuto, TopSvdSolver::kKrylov, TopSvdSolver::kDense}) {
      auto top = updated_top_svd(base, B, A, s, k, solver, /*vectors=*/true);
      const std::string where = std::to_string(c.m) + "x" + std::to_string(c.n) + " decay " +
                                std::to_string(c.decay) + " solver " + std::to_string(static_cast<int>(solver));
      ASSERT_EQ(top.S.size(0), k) << where;
      EXPECT_LT(max_abs_diff(top.S, ref.sv) / ref.sv[0].item<double>(), 1e-11) << where;
      // Singular vectors up to sign, and the cosines PEFT's rule reads.
      EXPECT_LT(max_abs_diff(at::matmul(top.U.t(), ref.U).abs().diagonal(), at::ones({k}, at::kDouble)), 1e-8) << where;
      EXPECT_LT(max_abs_diff(top.base_cos.abs().amax(0), ref.cos), 1e-8) << where;
      if (solver == TopSvdSolver::kKrylov) EXPECT_GT(top.krylov_dim, 0) << where;
      if (solver == TopSvdSolver::kDense) EXPECT_EQ(top.krylov_dim, 0) << where;
      const auto intr = intruder_dimensions(top, 0.5);
      EXPECT_EQ(intr.count, ref.intruders) << where;
      EXPECT_NEAR(intr.max_sv, ref.intruder_sv, 1e-10 * ref.sv[0].item<double>()) << where;
    }
  }
}

TEST(AdapterGeometryTest, KrylovIsWhatAutoPicksForALargeStructuredBase) {
  // K wider than 768: auto tries Krylov first (smaller K is solved densely).
  auto W = base_matrix(1000, 800, 0.97, 5);
  auto B = randn({1000, 8}, 6) * 0.05, A = randn({8, 800}, 7) * 0.05;
  auto top = updated_top_svd(base_spectrum(W), B, A, 2.0, 10);
  EXPECT_GT(top.krylov_dim, 0);
  EXPECT_LT(top.krylov_dim, 300);
  const auto ref = reference(W, B, A, 2.0, 10, 0.5);
  EXPECT_LT(max_abs_diff(top.S, ref.sv) / ref.sv[0].item<double>(), 1e-11);
  EXPECT_LT(max_abs_diff(top.base_cos.abs().amax(0), ref.cos), 1e-8);
}

TEST(AdapterGeometryTest, AnUpdateSpreadOverEveryBaseDirectionIsAnIntruder) {
  const int64_t m = 80, n = 64;
  auto W = base_matrix(m, n, 0.9, 3);
  auto [Uw, Sw, Vwh] = at::linalg_svd(W, false);
  // b = sum of all of W's left singular vectors / sqrt(p): |cos| = 1/8 with each; a = W's
  // 40th right vector. With a large enough scale it becomes the top singular vector of W'.
  auto b = Uw.sum(1, true) / std::sqrt(64.0);
  auto a = Vwh.narrow(0, 40, 1);
  auto B = at::cat({b, randn({m, 1}, 9) * 1e-3}, 1), A = at::cat({a, randn({1, n}, 10) * 1e-3}, 0);
  const double s = 10.0;
  auto g = adapter_geometry(base_spectrum(W), B, A, s, {});
  const auto ref = reference(W, B, A, s, 10, 0.5);
  ASSERT_GE(ref.intruders, 1);
  EXPECT_EQ(g.intruders.count, ref.intruders);
  EXPECT_EQ(g.intruders.indices.front(), 0);
  EXPECT_NEAR(g.intruders.max_sv, ref.intruder_sv, 1e-10 * ref.intruder_sv);
  EXPECT_NEAR(g.intruders.max_cos[0], ref.cos[0].item<double>(), 1e-8);
  // B = 0 (PEFT's init): W' = W, nothing intrudes, alignment is undefined.
  auto g0 = adapter_geometry(base_spectrum(W), at::zeros({m, 2}, at::kDouble), A, s, {});
  EXPECT_EQ(g0.intruders.count, 0);
  EXPECT_EQ(g0.delta.rank, 0);
  EXPECT_EQ(g0.angles_left.size(0), 0);
  EXPECT_TRUE(std::isnan(g0.align_left));
  for (double c : g0.intruders.max_cos) EXPECT_NEAR(c, 1.0, 1e-12);
}

TEST(AdapterGeometryTest, AlignmentAnglesMatchFullSvds) {
  for (auto [m, n, r, k] : std::vector<std::array<int64_t, 4>>{{70, 50, 4, 0}, {50, 70, 6, 10}, {64, 64, 8, 3}}) {
    auto W = base_matrix(m, n, 0.9, 70 + m);
    auto B = randn({m, r}, 71 + n), A = randn({r, n}, 72);
    // Pull the update toward W's top directions so the angles spread over [0, pi/2].
    auto [Uw, Sw, Vwh] = at::linalg_svd(W, false);
    B = B * 0.2 + Uw.narrow(1, 0, r);
    GeometryOptions opt;
    opt.base_k = k;
    auto g = adapter_geometry(base_spectrum(W), B, A, 0.5, opt);
    const int64_t kk = k > 0 ? k : r;
    auto [Ud, Sd, Vdh] = at::linalg_svd(0.5 * at::matmul(B, A), false);
    for (int side = 0; side < 2; ++side) {
      const at::Tensor base_k = side == 0 ? Uw.narrow(1, 0, kk) : Vwh.narrow(0, 0, kk).t();
      const at::Tensor delta = side == 0 ? Ud.narrow(1, 0, r) : Vdh.narrow(0, 0, r).t();
      const at::Tensor& ours = side == 0 ? g.angles_left : g.angles_right;
      const int64_t q = std::min(kk, r);
      ASSERT_EQ(ours.size(0), q);
      auto cos = at::linalg_svdvals(at::matmul(base_k.t(), delta));
      for (int64_t i = 0; i < q; ++i) EXPECT_NEAR(std::cos(ours[i].item<double>()), cos[i].item<double>(), 1e-12);
      const double align = (cos.pow(2).sum() / q).item<double>();
      EXPECT_NEAR(side == 0 ? g.align_left : g.align_right, align, 1e-12);
      if (kk == r) {
        auto sines = sines_from_projectors(base_k, delta, q);
        for (int64_t i = 0; i < q; ++i) EXPECT_NEAR(std::sin(ours[i].item<double>()), sines[i], 1e-12);
      }
    }
  }
}

TEST(AdapterGeometryTest, DriftBetweenTwoUpdatesMatchesProjectorDifference) {
  const int64_t m = 60, n = 45, r = 5;
  auto B = randn({m, r}, 1), A = randn({r, n}, 2);
  for (double step : {1e-7, 1e-3, 0.5}) {
    auto B2 = B + step * randn({m, r}, 3), A2 = A + step * randn({r, n}, 4);
    auto d = subspace_drift(low_rank_svd(B, A, 2.0), low_rank_svd(B2, A2, 2.0));
    auto [U1, S1, V1h] = at::linalg_svd(at::matmul(B, A), false);
    auto [U2, S2, V2h] = at::linalg_svd(at::matmul(B2, A2), false);
    auto left = sines_from_projectors(U1.narrow(1, 0, r), U2.narrow(1, 0, r), r);
    auto right = sines_from_projectors(V1h.narrow(0, 0, r).t(), V2h.narrow(0, 0, r).t(), r);
    ASSERT_EQ(d.left.size(0), r);
    for (int64_t i = 0; i < r; ++i) {
      EXPECT_NEAR(std::sin(d.left[i].item<double>()), left[i], 1e-12 + 1e-6 * left[i]) << step;
      EXPECT_NEAR(std::sin(d.right[i].item<double>()), right[i], 1e-12 + 1e-6 * right[i]) << step;
    }
  }
}

TEST(GeometryMonitorTest, FieldsDriftAndCache) {
  const int64_t m = 48, n = 40, r = 4;
  auto W = base_matrix(m, n, 0.9, 21);
  auto A = randn({r, n}, 22), B = randn({m, r}, 23) * 0.1;
  GeometryMonitor monitor(GeometryOptions{});
  auto first = monitor.observe({{"q", W, A, B, 2.0}, {"zero", W, A, at::zeros({m, r}, at::kDouble), 2.0}});
  EXPECT_EQ(monitor.cached_bytes(), 2 * static_cast<size_t>((m + n + 1) * std::min(m, n)) * sizeof(double));
  const auto& q = first["q"];
  const auto g = adapter_geometry(base_spectrum(W), B, A, 2.0, {});
  EXPECT_NEAR(q["align_left"].get<double>(), g.align_left, 1e-14);
  EXPECT_NEAR(q["align_right"].get<double>(), g.align_right, 1e-14);
  EXPECT_EQ(q["intruders"].get<int64_t>(), g.intruders.count);
  EXPECT_EQ(q["angles_left"].size(), static_cast<size_t>(r));
  EXPECT_TRUE(q["drift_left"].is_null());  // nothing to compare with yet
  // sv_entropy is the log of the effective rank of delta W's singular values.
  const auto sv = at::linalg_svdvals(2.0 * at::matmul(B, A)).narrow(0, 0, r);
  const auto p = sv / sv.sum();
  EXPECT_NEAR(q["sv_entropy"].get<double>(), -(p * p.log()).sum().item<double>(), 1e-12);
  // B = 0: no subspace, so no alignment or drift; W + delta W = W has no intruders.
  EXPECT_TRUE(first["zero"]["align_left"].is_null());
  EXPECT_EQ(first["zero"]["intruders"].get<int64_t>(), 0);

  auto B2 = B + 1e-3 * randn({m, r}, 24);
  auto second = monitor.observe({{"q", W, A, B2, 2.0}});
  const auto d = subspace_drift(low_rank_svd(B, A, 2.0), low_rank_svd(B2, A, 2.0));
  EXPECT_NEAR(second["q"]["drift_left"].get<double>(), d.left.max().item<double>(), 1e-12);
  EXPECT_NEAR(second["q"]["drift_right"].get<double>(), d.right.max().item<double>(), 1e-12);
  EXPECT_GT(second["q"]["drift_left"].get<double>(), 1e-6);

  nlohmann::json adapters = {{"q", {{"sv", {1.0}}, {"erank", 1.0}}}};
  merge_geometry(adapters, second);
  EXPECT_EQ(adapters["q"]["erank"], 1.0);
  EXPECT_EQ(adapters["q"]["drift_left"], second["q"]["drift_left"]);
}

}  // namespace
}  // namespace lorascope
