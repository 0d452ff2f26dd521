// silu(a) * b (models/fused_swiglu.h) against the float64 formula, fused or composite.
#include <gtest/gtest.h>

#include "models/fused_swiglu.h"
#include "tensor_fixtures.h"

namespace lorascope {
namespace {

TEST(FusedSwigluTest, ValueAndGradientsFollowTheFloat64Formula) {
  for (auto shape : std::vector<std::vector<int64_t>>{{4, 37, 344}, {3, 5}, {1}}) {
    auto a64 = randn(shape, 1, 4.0);
    if (a64.numel() > 2) {  // saturated ends of the sigmoid
      a64.view(-1)[0] = 95.0;
      a64.view(-1)[1] = -95.0;
    }
    const auto b64 = randn(shape, 2), g64 = randn(shape, 3);
    auto ar = a64.clone().requires_grad_(), br = b64.clone().requires_grad_();
    const auto yr = at::silu(ar) * br;
    yr.backward(g64);
    for (auto dtype : {at::kFloat, at::kDouble}) {
      auto a = a64.to(dtype).detach().clone().requires_grad_(), b = b64.to(dtype).detach().clone().requires_grad_();
      const auto y = swiglu(a, b);
      y.backward(g64.to(dtype));
      // exp within 2 ulp, then a few roundings; relative to the largest value of each tensor.
      const double tol = dtype == at::kFloat ? 3e-6 : 1e-14;
      EXPECT_LT(max_abs(y.to(at::kDouble) - yr), tol * max_abs(yr)) << c10::toString(dtype) << " " << a64.numel();
      EXPECT_LT(max_abs(a.grad().to(at::kDouble) - ar.grad()), tol * max_abs(ar.grad())) << c10::toString(dtype);
      EXPECT_LT(max_abs(b.grad().to(at::kDouble) - br.grad()), tol * max_abs(br.grad())) << c10::toString(dtype);
      EXPECT_TRUE(at::isfinite(a.grad()).all().item<bool>());
    }
  }
}

TEST(FusedSwigluTest, ElementwiseErrorIsWithinAFewUlpWhereTheCpuHasTheKernels) {
  // Where fused, each value against float64 silu(a) b relative to itself (not to the maximum).
  const auto a64 = at::linspace(-30, 30, 4097, at::kDouble), b64 = at::ones({4097}, at::kDouble);
  const auto a = a64.to(at::kFloat), b = b64.to(at::kFloat);
  if (!fused_swiglu_applies(a, b)) GTEST_SKIP() << "no AVX-512 here: the composite path runs";
  const auto ref = at::silu(a.to(at::kDouble)) * b64;  // of the float32 inputs
  const auto rel = (swiglu(a, b).to(at::kDouble) - ref).abs() / ref.abs().clamp_min(1e-30);
  EXPECT_LT(rel.max().item<double>(), 4 * 1.2e-7);
  EXPECT_FALSE(fused_swiglu_applies(a.to(at::kDouble), b.to(at::kDouble)));
  EXPECT_FALSE(fused_swiglu_applies(a, b.narrow(0, 0, 4096)));
}

}  // namespace
}  // namespace lorascope
