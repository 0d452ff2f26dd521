// LoRA-GA, LoRA-One and OLoRA initializations against float64 SVD / QR references: the subspaces
// each method claims, its scaling, and whether the output is unchanged at init.
#include <gtest/gtest.h>

#include <cmath>

#include "models/lora_init.h"
#include "tests/error_of.h"
#include "tests/tensor_fixtures.h"

namespace lorascope {
namespace {

// Orthogonal projector onto the column span of M.
at::Tensor projector(const at::Tensor& M) {
  auto Q = std::get<0>(at::linalg_qr(M.to(at::kDouble)));
  return at::matmul(Q, Q.t());
}

// A gradient with a clear spectral gap at every index (distinct singular values).
at::Tensor gradient(int64_t out, int64_t in, uint64_t seed) {
  const int64_t k = std::min(out, in);
  auto U = std::get<0>(at::linalg_qr(randn({out, k}, seed)));
  auto V = std::get<0>(at::linalg_qr(randn({in, k}, seed + 1)));
  auto s = at::pow(0.7, at::arange(k, at::kDouble));  // 1, 0.7, 0.49, ...
  return at::matmul(U * s.unsqueeze(0), V.t());
}

TEST(LoraInitTest, LoraGaTakesTheGradientsSingularSubspacesAndKeepsTheOutput) {
  const int64_t out = 24, in = 40, r = 4;
  const double s = 2.0, gamma = 16.0, c = std::pow(24.0, 0.25) / std::sqrt(gamma);
  auto W = randn({out, in}, 1), G = gradient(out, in, 2);
  auto [U, S, Vh] = at::linalg_svd(G, false);
  auto init = lora_ga_init(W, G, r, s);
  // A = c V_{1..r}^T (rows: the top-r right singular vectors), B = c U_{r+1..2r}; up to the sign of
  // each singular pair, so compare projectors and norms.
  EXPECT_LT(max_abs(projector(init.A.t()) - projector(Vh.narrow(0, 0, r).t())), 1e-12);
  EXPECT_LT(max_abs(projector(init.B) - projector(U.narrow(1, r, r))), 1e-12);
  EXPECT_LT(max_abs(at::matmul(init.A, init.A.t()) - c * c * at::eye(r, at::kDouble)), 1e-12);
  EXPECT_LT(max_abs(at::matmul(init.B.t(), init.B) - c * c * at::eye(r, at::kDouble)), 1e-12);
  // Output unchanged: W' + s B A = W.
  EXPECT_LT(max_abs(init.W + s * at::matmul(init.B, init.A) - W), 1e-14);
  // Their Theorem 3.1: one gradient step (lr) on both factors under a constant full gradient G
  // moves s B A by -lr s^2 (G A^T A + B B^T G) to first order = -lr s^2 c^2 G_2r, the best rank-2r
  // approximation of G.
  auto gA = s * at::matmul(init.B.t(), G), gB = s * at::matmul(G, init.A.t());
  auto first_order = s * (at::matmul(gB, init.A) + at::matmul(init.B, gA));  // per unit lr
  auto G2r = at::matmul(U.narrow(1, 0, 2 * r) * S.narrow(0, 0, 2 * r).unsqueeze(0), Vh.narrow(0, 0, 2 * r));
  EXPECT_LT(max_abs(first_order - s * s * c * c * G2r), 1e-12);
}

TEST(LoraInitTest, LoraGaPeftFlavourPutsSingularValuesIntoB) {
  const int64_t out = 24, in = 40, r = 4;
  const double c = std::pow(24.0, 0.25) / std::sqrt(16.0);
  auto W = randn({out, in}, 3), G = gradient(out, in, 4);
  auto [U, S, Vh] = at::linalg_svd(G, false);
  auto init = lora_ga_init(W, G, r, 1.5, {16.0, LoraGaFlavor::Peft});
  EXPECT_LT(max_abs(at::matmul(init.A, init.A.t()) - at::eye(r, at::kDouble)), 1e-12);  // A unscaled
  // B^T B = c^2 diag(S_{r+1..2r}^2).
  auto expected = at::diag(S.narrow(0, r, r).pow(2)) * (c * c);
  EXPECT_LT(max_abs(at::matmul(init.B.t(), init.B) - expected), 1e-12);
  EXPECT_LT(max_abs(projector(init.B) - projector(U.narrow(1, r, r))), 1e-12);
  EXPECT_LT(max_abs(init.W + 1.5 * at::matmul(init.B, init.A) - W), 1e-14);
}

TEST(LoraInitTest, LoraOneIsANormalisedRankROneStepAndLeavesTheBaseAlone) {
  const int64_t out = 30, in = 20, r = 5;
  const double s = 16.0 / std::sqrt(5.0), gamma = 16.0;
  auto W = randn({out, in}, 5), G = gradient(out, in, 6) * 3.0;
  auto init = lora_one_init(W, G, r, s);
  auto [U, S, Vh] = at::linalg_svd(-G, false);
  auto minus_G_r = at::matmul(U.narrow(1, 0, r) * S.narrow(0, 0, r).unsqueeze(0), Vh.narrow(0, 0, r));
  EXPECT_LT(max_abs(s * at::matmul(init.B, init.A) - (s / (gamma * S[0].item<double>())) * minus_G_r), 1e-13);
  EXPECT_TRUE(at::equal(init.W, W));  // not corrected: the output moves by s B A
  // Balanced factors: B^T B = A A^T = S_r / (sigma_1 gamma).
  auto balance = at::diag(S.narrow(0, 0, r) / (S[0] * gamma));
  EXPECT_LT(max_abs(at::matmul(init.B.t(), init.B) - balance), 1e-13);
  EXPECT_LT(max_abs(at::matmul(init.A, init.A.t()) - balance), 1e-13);
}

TEST(LoraInitTest, OloraUsesTheQrOfTheBaseAndKeepsTheOutput) {
  for (auto [out, in] : std::vector<std::pair<int64_t, int64_t>>{{24, 40}, {40, 24}}) {
    const int64_t r = 6;
    auto W = randn({out, in}, 7 + out);
    auto init = olora_init(W, r, 2.0);
    // B: orthonormal columns spanning W's first r columns (the QR property, against the definition).
    EXPECT_LT(max_abs(at::matmul(init.B.t(), init.B) - at::eye(r, at::kDouble)), 1e-13);
    EXPECT_LT(max_abs(projector(init.B) - projector(W.narrow(1, 0, r))), 1e-12);
    // B A = Q_r R_r: its first r columns are W's first r columns; A is upper triangular there.
    EXPECT_LT(max_abs(at::matmul(init.B, init.A).narrow(1, 0, r) - W.narrow(1, 0, r)), 1e-13);
    EXPECT_LT(max_abs(at::tril(init.A.narrow(1, 0, r), -1)), 1e-15);
    EXPECT_LT(max_abs(init.W + 2.0 * at::matmul(init.B, init.A) - W), 1e-13);
  }
}

TEST(LoraInitTest, Float32WeightsGetFloat32FactorsAndTheOutputKeptToOneRounding) {
  auto W = randn({32, 48}, 9).to(at::kFloat), G = gradient(32, 48, 10).to(at::kFloat);
  for (const auto& init : {lora_ga_init(W, G, 4, 2.0), olora_init(W, 4, 2.0)}) {
    EXPECT_EQ(init.A.scalar_type(), at::kFloat);
    EXPECT_EQ(init.W.scalar_type(), at::kFloat);
    auto recon = init.W.to(at::kDouble) + 2.0 * at::matmul(init.B.to(at::kDouble), init.A.to(at::kDouble));
    EXPECT_LT(max_abs(recon - W.to(at::kDouble)), 4 * 1.2e-7 * max_abs(W));  // one float32 rounding of W'
  }
}

TEST(LoraInitTest, RejectBadArgumentsNamingTheMethod) {
  auto W = randn({8, 10}, 11), G = randn({8, 10}, 12);
  EXPECT_NE(error_of([&] { lora_ga_init(W, G, 5, 1.0); }).find("lora_ga: rank r = 5 must be in [1, 4]"),
            std::string::npos);
  EXPECT_NE(error_of([&] { lora_one_init(W, randn({10, 8}, 1), 2, 1.0); }).find("lora_one: gradient shape"),
            std::string::npos);
  EXPECT_NE(error_of([&] { lora_one_init(W, at::zeros_like(W), 2, 1.0); }).find("the gradient is zero"),
            std::string::npos);
  auto nan = G.clone();
  nan[0][0] = std::nan("");
  EXPECT_NE(error_of([&] { lora_ga_init(W, nan, 2, 1.0); }).find("NaN or Inf"), std::string::npos);
  EXPECT_NE(error_of([&] { olora_init(W, 0, 1.0); }).find("olora: rank r = 0"), std::string::npos);
  EXPECT_NE(error_of([&] { olora_init(W, 2, -1.0); }).find("scaling must be"), std::string::npos);
}

}  // namespace
}  // namespace lorascope
