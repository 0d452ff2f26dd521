// Adapter geometry (models/adapter_geometry.h, models/principal_angles.h) against direct float64
// computations on the full matrices: a full SVD of W + s B A, projector differences for
// principal angles, PEFT's intruder rule applied to the full SVDs.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <stdexcept>
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
      if (solver == TopSvdSolver::kKrylov) {
        EXPECT_GT(top.krylov_dim, 0) << where;
      }
      if (solver == TopSvdSolver::kDense) {
        EXPECT_EQ(top.krylov_dim, 0) << where;
      }
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

// A float32 base (monitor.base_svd_dtype=float32) stores U~ = U + E_U, V~ = V + E_V with
// |E_ij| <= u |U_ij|, u = 2^-24, so ||E_k||_2 <= ||E_k||_F <= u sqrt(k) for k columns. Then
//  - alignment: the cosines are singular values of U~_k^T L (L: delta W's orthonormal basis), off
//    by <= ||E_k|| (Weyl); the sines, of L - U~_k U~_k^T L (or U~_k - L L^T U~_k), off by
//    <= 2 ||E_k|| + ||E_k||^2; principal_angles takes asin below pi/4 and acos above, so each angle
//    is off by <= sqrt(2) * 2 u sqrt(k), tiny ones included (acos alone would give sqrt(u) there);
//    mean cos^2 by <= 2 u sqrt(k). Bound used: 4 u sqrt(k).
//  - top-k of W + delta W: K (see adapter_geometry.h) keeps diag(S) exact, only its rank-r part
//    X Y^T, X = U~^T B, moves: ||dK|| <= 2 ||E|| ||delta W||, ||E|| <= u sqrt(p). Singular values
//    move by <= ||dK|| (Weyl); u_i, and the cosines read from it, by <= sqrt(2) ||dK|| / gap_i
//    (Wedin), gap_i the distance of sigma_i(W + delta W) to its neighbours.
//  - drift reads delta W's factors only: the same numbers.
struct Float32Bounds {
  double subspace, sv, cos;
};
Float32Bounds float32_bounds(int64_t k, int64_t p, double delta_norm, const at::Tensor& sv_all, int64_t top) {
  const double u = std::ldexp(1.0, -24);
  const double dK = 2 * u * std::sqrt(static_cast<double>(p)) * delta_norm;
  double gap = INFINITY;
  for (int64_t i = 0; i < top; ++i) {
    if (i > 0) gap = std::min(gap, sv_all[i - 1].item<double>() - sv_all[i].item<double>());
    if (i + 1 < sv_all.size(0)) gap = std::min(gap, sv_all[i].item<double>() - sv_all[i + 1].item<double>());
  }
  return {4 * u * std::sqrt(static_cast<double>(k)), dK, std::sqrt(2.0) * dK / gap};
}

TEST(AdapterGeometryTest, Float32BaseAgreesWithFullFloat64WithinItsRounding) {
  struct Case { int64_t m, n, r, k; };
  double worst_sub = 0, worst_cos = 0, worst_sv = 0;  // error / bound
  int64_t intruders = 0;
  for (auto c : std::vector<Case>{{90, 60, 4, 0}, {60, 90, 6, 10}, {80, 80, 8, 3}}) {
    auto W = base_matrix(c.m, c.n, 0.9, 80 + c.m);
    auto [Uw, Sw, Vwh] = at::linalg_svd(W, false);
    // Left: nearly W's top r directions (angles ~1e-6, where acos would lose half the digits);
    // right: W's lower directions plus noise, so the update makes intruders.
    auto B = Uw.narrow(1, 0, c.r) + 1e-6 * randn({c.m, c.r}, 81 + c.n);
    auto A = Vwh.narrow(0, 20, c.r) + 0.3 * randn({c.r, c.n}, 82);
    const double s = 2.0;
    GeometryOptions opt;
    opt.base_k = c.k;
    opt.intruder_epsilon = 0.9;
    const auto base32 = base_spectrum(W, at::kFloat);
    ASSERT_EQ(base32.U.scalar_type(), at::kFloat);
    ASSERT_EQ(base32.V.scalar_type(), at::kFloat);
    ASSERT_EQ(base32.S.scalar_type(), at::kDouble);
    const auto g32 = adapter_geometry(base32, B, A, s, opt);
    const auto g64 = adapter_geometry(base_spectrum(W), B, A, s, opt);
    const int64_t p = std::min(c.m, c.n), kk = c.k > 0 ? c.k : c.r;
    const auto ref = reference(W, B, A, s, opt.intruder_top_k, opt.intruder_epsilon);
    const auto delta = s * at::matmul(B, A);
    const auto bound = float32_bounds(kk, p, at::linalg_matrix_norm(delta, 2).item<double>(),
                                      at::linalg_svdvals(W + delta), opt.intruder_top_k);
    const std::string where = std::to_string(c.m) + "x" + std::to_string(c.n) + " k " + std::to_string(kk);
    // Alignment against the float64 cache (itself checked against full SVDs above).
    ASSERT_EQ(g32.angles_left.size(0), g64.angles_left.size(0)) << where;
    ASSERT_EQ(g32.angles_right.size(0), g64.angles_right.size(0)) << where;
    EXPECT_LT(g64.angles_left[0].item<double>(), 1e-5) << where << ": the tiny angles this case is for";
    const auto subspace = [&](double err, const char* what) {
      EXPECT_LE(err, bound.subspace) << where << " " << what;
      worst_sub = std::max(worst_sub, err / bound.subspace);
    };
    subspace(max_abs_diff(g32.angles_left, g64.angles_left), "angles_left");
    subspace(max_abs_diff(g32.angles_right, g64.angles_right), "angles_right");
    subspace(std::abs(g32.align_left - g64.align_left), "align_left");
    subspace(std::abs(g32.align_right - g64.align_right), "align_right");
    // Intruders against PEFT's rule on the full float64 SVDs (the float64 path's own error,
    // <= 1e-8 in the cosines above, is far inside the bounds).
    for (int64_t i = 0; i < opt.intruder_top_k; ++i) {
      const double cos_err = std::abs(g32.intruders.max_cos[i] - ref.cos[i].item<double>());
      const double sv_err = std::abs(g32.intruders.sv[i] - ref.sv[i].item<double>());
      EXPECT_LE(cos_err, bound.cos) << where << " u_" << i;
      EXPECT_LE(sv_err, bound.sv) << where << " sigma_" << i;
      worst_cos = std::max(worst_cos, cos_err / bound.cos);
      worst_sv = std::max(worst_sv, sv_err / bound.sv);
      EXPECT_GT(std::abs(ref.cos[i].item<double>() - opt.intruder_epsilon), bound.cos) << where << ": count not robust";
    }
    EXPECT_EQ(g32.intruders.count, ref.intruders) << where;
    EXPECT_NEAR(g32.intruders.max_sv, ref.intruder_sv, bound.sv) << where;
    intruders += ref.intruders;
  }
  EXPECT_GT(intruders, 0);  // the counts compared are not all zero
  EXPECT_THROW(base_spectrum(base_matrix(8, 6, 0.9, 1), at::kHalf), std::invalid_argument);
  std::printf("float32 base: worst error / bound: alignment %.3g, cosines %.3g, singular values %.3g\n", worst_sub,
              worst_cos, worst_sv);
}

TEST(GeometryMonitorTest, Float32CacheHalvesTheBytesAndKeepsTheFields) {
  const int64_t m = 96, n = 64, p = 64, r = 4;
  auto W1 = base_matrix(m, n, 0.9, 31), W2 = base_matrix(n, m, 0.9, 32);
  auto A1 = randn({r, n}, 33), B1 = randn({m, r}, 34) * 0.1;
  auto A2 = randn({r, m}, 35), B2 = randn({n, r}, 36) * 0.1;
  GeometryMonitor m64(GeometryOptions{}), m32(GeometryOptions{}, at::kFloat);
  std::vector<GeometryInput> in = {{"q", W1, A1, B1, 2.0}, {"v", W2, A2, B2, 2.0}};
  std::vector<nlohmann::json> got64, got32;
  for (int log = 0; log < 2; ++log) {
    got64.push_back(m64.observe(in));
    got32.push_back(m32.observe(in));
    for (auto& a : in) a.B = a.B + 1e-3 * randn(a.B.sizes().vec(), 40 + log);
  }
  // (m + n) p float32 for U and V, p float64 for S, per adapter; against (m + n + 1) p float64.
  const size_t bytes32 = 2 * (static_cast<size_t>((m + n) * p) * sizeof(float) + p * sizeof(double));
  EXPECT_EQ(m64.cached_bytes(), 2 * static_cast<size_t>((m + n + 1) * p) * sizeof(double));
  EXPECT_EQ(m32.cached_bytes(), bytes32);
  EXPECT_LT(static_cast<double>(m32.cached_bytes()) / static_cast<double>(m64.cached_bytes()), 0.51);
  const double tol = 4 * std::ldexp(1.0, -24) * std::sqrt(static_cast<double>(r));  // base_k = r: the bound above
  for (size_t log = 0; log < got64.size(); ++log) {
    for (const auto* name : {"q", "v"}) {
      const auto &a = got64[log].at(name), &b = got32[log].at(name);
      for (const auto* key : {"align_left", "align_right"}) EXPECT_NEAR(a.at(key).get<double>(), b.at(key).get<double>(), tol) << name << key;
      for (const auto* key : {"angles_left", "angles_right"}) {
        ASSERT_EQ(a.at(key).size(), b.at(key).size());
        for (size_t i = 0; i < a.at(key).size(); ++i) EXPECT_NEAR(a.at(key).at(i).get<double>(), b.at(key).at(i).get<double>(), tol) << name << key;
      }
      EXPECT_EQ(a.at("intruders"), b.at("intruders")) << name;
      EXPECT_EQ(a.at("drift_left"), b.at("drift_left")) << name;  // from delta W alone
      EXPECT_EQ(a.at("drift_right"), b.at("drift_right")) << name;
      EXPECT_EQ(a.at("sv_entropy"), b.at("sv_entropy")) << name;
    }
  }
  EXPECT_TRUE(got32[1].at("q").at("drift_left").is_number());
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
