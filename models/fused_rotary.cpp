#include "models/fused_rotary.h"

#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

namespace lorascope {
namespace {

// One (b, t, head) row of hd values, halves x1 = x[:h], x2 = x[h:]. Forward (sign = +1):
//   y1 = x1 cos1 + (-x2) sin1,  y2 = x2 cos2 + x1 sin2.
// Backward, the transpose (sign = -1 marks it):
//   g1 = y1 cos1 + y2 sin2,     g2 = y2 cos2 + (-y1) sin1.
template <typename T, bool kBackward>
void rotate_rows(const T* in, const T* cos, const T* sin, T* out, int64_t B, int64_t Tn, int64_t heads,
                 int64_t hd) {
  const int64_t h = hd / 2;
  at::parallel_for(0, B * Tn, 16, [&](int64_t begin, int64_t end) {
    for (int64_t bt = begin; bt < end; ++bt) {
      const int64_t t = bt % Tn;
      const T* c = cos + t * hd;
      const T* s = sin + t * hd;
      for (int64_t k = 0; k < heads; ++k) {
        const T* x = in + (bt * heads + k) * hd;
        T* y = out + (bt * heads + k) * hd;
        for (int64_t i = 0; i < h; ++i) {
          const T x1 = x[i], x2 = x[i + h];
          if (kBackward) {
            y[i] = x1 * c[i] + x2 * s[i + h];
            y[i + h] = x2 * c[i + h] + (-x1) * s[i];
          } else {
            y[i] = x1 * c[i] + (-x2) * s[i];
            y[i + h] = x2 * c[i + h] + x1 * s[i + h];
          }
        }
      }
    }
  });
}

template <bool kBackward>
at::Tensor rotate(const at::Tensor& x_in, const at::Tensor& cos, const at::Tensor& sin) {
  const auto x = x_in.contiguous();
  auto y = at::empty_like(x);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "fused_rotary", [&] {
    rotate_rows<scalar_t, kBackward>(x.data_ptr<scalar_t>(), cos.data_ptr<scalar_t>(), sin.data_ptr<scalar_t>(),
                                     y.data_ptr<scalar_t>(), x.size(0), x.size(1), x.size(2), x.size(3));
  });
  return y;
}

struct RotaryFunction : public torch::autograd::Function<RotaryFunction> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& cos_in,
                            const at::Tensor& sin_in) {
    const auto cos = cos_in.contiguous(), sin = sin_in.contiguous();
    ctx->save_for_backward({cos, sin});
    return rotate<false>(x, cos, sin);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    return {rotate<true>(grad_outputs[0], saved[0], saved[1]), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

bool fused_rotary_applies(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  const auto t = x.scalar_type();
  if (!(t == at::kFloat || t == at::kDouble) || cos.scalar_type() != t || sin.scalar_type() != t) return false;
  if (!x.device().is_cpu() || !cos.device().is_cpu() || !sin.device().is_cpu()) return false;
  if (cos.requires_grad() || sin.requires_grad() || x.dim() != 4 || cos.dim() != 2) return false;
  const int64_t T = x.size(1), hd = x.size(3);
  return hd % 2 == 0 && cos.size(0) == T && cos.size(1) == hd && sin.sizes() == cos.sizes();
}

at::Tensor fused_rotary(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  TORCH_CHECK(fused_rotary_applies(x, cos, sin),
              "fused_rotary: expected CPU float x (B, T, heads, hd) and cos, sin (T, hd); got ", x.sizes(), " ",
              x.scalar_type(), ", ", cos.sizes(), " ", cos.scalar_type());
  return RotaryFunction::apply(x, cos, sin);
}

}  // namespace lorascope
