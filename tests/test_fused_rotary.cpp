// The fused rotary node (models/fused_rotary.h) against the composite form in float64.
#include <gtest/gtest.h>

#include "models/fused_rotary.h"
#include "models/transformer_layers.h"
#include "tensor_fixtures.h"

namespace lorascope {
namespace {

TEST(FusedRotaryTest, ValueAndGradientFollowTheCompositeFormInFloat64) {
  const int64_t B = 2, T = 5, H = 3, hd = 8;
  const auto cs = rotary_cos_sin(T, hd, 10000.0, at::TensorOptions().dtype(at::kDouble));
  const auto x64 = randn({B, T, H, hd}, 1), g64 = randn({B, T, H, hd}, 2);
  auto xr = x64.clone().requires_grad_();
  const auto yr = apply_rotary(xr.transpose(1, 2), cs.first, cs.second).transpose(1, 2);  // (B, T, H, hd)
  yr.backward(g64);
  for (auto dtype : {at::kFloat, at::kDouble}) {
    auto x = x64.to(dtype).detach().clone().requires_grad_();
    const auto cos = cs.first.to(dtype), sin = cs.second.to(dtype);
    ASSERT_TRUE(fused_rotary_applies(x, cos, sin));
    const auto y = fused_rotary(x, cos, sin);
    y.backward(g64.to(dtype));
    const double tol = dtype == at::kFloat ? 1e-6 : 1e-15;
    EXPECT_LT(max_abs(y.to(at::kDouble) - yr), tol * max_abs(yr)) << c10::toString(dtype);
    EXPECT_LT(max_abs(x.grad().to(at::kDouble) - xr.grad()), tol * max_abs(xr.grad())) << c10::toString(dtype);
  }
  // The rotation keeps each pair's norm and its inverse undoes it: the gradient of the sum of
  // squares is 2 x.
  auto x = x64.clone().requires_grad_();
  fused_rotary(x, cs.first, cs.second).pow(2).sum().backward();
  EXPECT_LT(max_abs(x.grad() - 2 * x64), 1e-12);
  EXPECT_GT(max_abs(fused_rotary(x64, cs.first, cs.second) - x64), 0.1);  // it rotates
}

TEST(FusedRotaryTest, OtherInputsTakeTheCompositePath) {
  const auto cs = rotary_cos_sin(4, 6, 10000.0, at::TensorOptions().dtype(at::kFloat));
  const auto x = at::zeros({1, 4, 2, 6}, at::kFloat);
  EXPECT_TRUE(fused_rotary_applies(x, cs.first, cs.second));
  EXPECT_FALSE(fused_rotary_applies(x.to(at::kBFloat16), cs.first, cs.second));
  EXPECT_FALSE(fused_rotary_applies(x, cs.first.to(at::kDouble), cs.second));
  EXPECT_FALSE(fused_rotary_applies(at::zeros({1, 5, 2, 6}), cs.first, cs.second));  // T mismatch
  EXPECT_FALSE(fused_rotary_applies(x, cs.first.clone().requires_grad_(), cs.second));
  EXPECT_THROW(fused_rotary(at::zeros({1, 5, 2, 6}), cs.first, cs.second), c10::Error);
}

}  // namespace
}  // namespace lorascope
