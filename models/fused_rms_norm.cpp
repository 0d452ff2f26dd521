#include "models/fused_rms_norm.h"

#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cmath>

namespace lorascope {
namespace {

constexpr int64_t kRowsPerTask = 64;

// y = w x r and r = 1 / sqrt(mean(x^2) + eps) for each of `rows` rows of length C.
template <typename T>
void forward_rows(const T* x, const T* w, T* y, T* rstd, int64_t rows, int64_t C, double eps) {
  at::parallel_for(0, rows, kRowsPerTask, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const T* xi = x + i * C;
      double squares = 0;
      for (int64_t c = 0; c < C; ++c) squares += static_cast<double>(xi[c]) * xi[c];
      const T r = static_cast<T>(1.0 / std::sqrt(squares / C + eps));
      rstd[i] = r;
      T* yi = y + i * C;
      for (int64_t c = 0; c < C; ++c) yi[c] = w[c] * (xi[c] * r);
    }
  });
}

// dx = r (g w - xhat mean(g w xhat)), xhat = x r, for each row.
template <typename T>
void backward_rows(const T* g, const T* x, const T* w, const T* rstd, T* dx, int64_t rows, int64_t C) {
  at::parallel_for(0, rows, kRowsPerTask, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const T* gi = g + i * C;
      const T* xi = x + i * C;
      const T r = rstd[i];
      double dot = 0;  // sum of g w xhat
      for (int64_t c = 0; c < C; ++c) dot += static_cast<double>(gi[c]) * w[c] * (xi[c] * r);
      const T mean = static_cast<T>(dot / C);
      T* dxi = dx + i * C;
      for (int64_t c = 0; c < C; ++c) dxi[c] = r * (gi[c] * w[c] - (xi[c] * r) * mean);
    }
  });
}

struct RmsNormFunction : public torch::autograd::Function<RmsNormFunction> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x_in, const at::Tensor& w_in,
                            double eps) {
    const auto x = x_in.contiguous(), w = w_in.contiguous();
    const int64_t C = x.size(-1), rows = C == 0 ? 0 : x.numel() / C;
    auto y = at::empty_like(x);
    auto rstd = at::empty({rows}, x.options());
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "fused_rms_norm", [&] {
      forward_rows<scalar_t>(x.data_ptr<scalar_t>(), w.data_ptr<scalar_t>(), y.data_ptr<scalar_t>(),
                             rstd.data_ptr<scalar_t>(), rows, C, eps);
    });
    ctx->save_for_backward({x, w, rstd});
    return y;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &w = saved[1], &rstd = saved[2];
    const auto g = grad_outputs[0].contiguous();
    const int64_t C = x.size(-1), rows = rstd.size(0);
    at::Tensor dx, dw;
    if (ctx->needs_input_grad(0)) {
      dx = at::empty_like(x);
      AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "fused_rms_norm_backward", [&] {
        backward_rows<scalar_t>(g.data_ptr<scalar_t>(), x.data_ptr<scalar_t>(), w.data_ptr<scalar_t>(),
                                rstd.data_ptr<scalar_t>(), dx.data_ptr<scalar_t>(), rows, C);
      });
    }
    if (ctx->needs_input_grad(1)) {  // a trained norm weight: sum over rows of g xhat
      dw = (g.view({rows, C}) * (x.view({rows, C}) * rstd.unsqueeze(1))).sum(0);
    }
    return {dx, dw, at::Tensor()};
  }
};

}  // namespace

bool fused_rms_norm_applies(const at::Tensor& x, const at::Tensor& weight) {
  const auto t = x.scalar_type();
  return x.device().is_cpu() && weight.device().is_cpu() && (t == at::kFloat || t == at::kDouble) &&
         weight.scalar_type() == t && x.dim() >= 1 && weight.dim() == 1 && weight.size(0) == x.size(-1);
}

at::Tensor fused_rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  TORCH_CHECK(fused_rms_norm_applies(x, weight), "fused_rms_norm: expected CPU float32/float64 x and weight (",
              x.sizes(), " ", x.scalar_type(), ", ", weight.sizes(), " ", weight.scalar_type(), ")");
  return RmsNormFunction::apply(x, weight, eps);
}

}  // namespace lorascope
