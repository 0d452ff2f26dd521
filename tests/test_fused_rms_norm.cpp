// The fused RMSNorm node (models/fused_rms_norm.h) against the composite formula in float64.
#include <gtest/gtest.h>

#include "models/fused_rms_norm.h"
#include "models/transformer_layers.h"
#include "tensor_fixtures.h"

namespace lorascope {
namespace {

// w * x / sqrt(mean(x^2) + eps), float64 autograd through ATen's composite ops.
at::Tensor reference(const at::Tensor& x, const at::Tensor& w, double eps) {
  return w * (x * at::rsqrt(x.pow(2).mean(-1, true) + eps));
}

TEST(FusedRmsNormTest, ValueAndGradientsFollowTheFloat64Formula) {
  for (auto dtype : {at::kFloat, at::kDouble}) {
    for (auto shape : std::vector<std::vector<int64_t>>{{3, 5, 128}, {4, 7}, {1, 3}}) {
      const int64_t C = shape.back();
      const auto x64 = randn(shape, 1, 3.0), w64 = randn({C}, 2), g64 = randn(shape, 3);
      auto x = x64.to(dtype).detach().clone().requires_grad_(), w = w64.to(dtype).detach().clone().requires_grad_();
      ASSERT_TRUE(fused_rms_norm_applies(x, w));
      const auto y = fused_rms_norm(x, w, 1e-6);
      y.backward(g64.to(dtype));
      auto xr = x64.clone().requires_grad_(), wr = w64.clone().requires_grad_();
      const auto yr = reference(xr, wr, 1e-6);
      yr.backward(g64);
      const double tol = dtype == at::kFloat ? 2e-6 : 1e-13;
      EXPECT_LT(max_abs(y.to(at::kDouble) - yr), tol * max_abs(yr)) << c10::toString(dtype) << " " << C;
      EXPECT_LT(max_abs(x.grad().to(at::kDouble) - xr.grad()), tol * max_abs(xr.grad())) << c10::toString(dtype);
      ASSERT_TRUE(w.grad().defined());
      EXPECT_LT(max_abs(w.grad().to(at::kDouble) - wr.grad()), tol * max_abs(wr.grad()))
          << c10::toString(dtype);
    }
  }
}

TEST(FusedRmsNormTest, FrozenWeightNonContiguousInputAndOtherDtypes) {
  // A frozen weight (LoRA) gets no gradient; a transposed input is read as its values.
  const auto x64 = randn({128, 6}, 4).t(), w64 = randn({128}, 5);
  auto x = x64.to(at::kFloat).requires_grad_();
  const auto w = w64.to(at::kFloat);
  const auto y = fused_rms_norm(x, w, 1e-5);
  y.sum().backward();
  auto xr = x64.clone().requires_grad_();
  reference(xr, w64, 1e-5).sum().backward();
  EXPECT_LT(max_abs(x.grad().to(at::kDouble) - xr.grad()), 2e-6 * max_abs(xr.grad()));
  EXPECT_FALSE(w.grad().defined());
  // bf16, mixed dtypes and a wrong weight size take the module's composite path.
  EXPECT_FALSE(fused_rms_norm_applies(x.to(at::kBFloat16), w.to(at::kBFloat16)));
  EXPECT_FALSE(fused_rms_norm_applies(x, w64));
  EXPECT_FALSE(fused_rms_norm_applies(x, at::ones({5})));
  EXPECT_THROW(fused_rms_norm(x, at::ones({5}), 1e-5), c10::Error);
  // The module runs the fused node in float32 and the composite one in bf16; both follow the formula.
  RMSNorm norm(128, 1e-5);
  norm.weight.data().copy_(w);
  EXPECT_LT(max_abs(norm.forward(x).to(at::kDouble) - reference(x64, w64, 1e-5)), 1e-5);
  EXPECT_LT(max_abs(norm.forward(x.to(at::kBFloat16)).to(at::kDouble) - reference(x64, w64, 1e-5)), 0.1);
}

}  // namespace
}  // namespace lorascope
