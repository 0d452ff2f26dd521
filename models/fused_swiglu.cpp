#include "models/fused_swiglu.h"

#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include "util/cpu_features.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define LORASCOPE_SWIGLU_KERNELS 1
// GCC 12's AVX-512 intrinsics trip -W(maybe-)uninitialized inside their own header (util/eigen.h).
// Off for the whole file, not just around the include: GCC reports them where the intrinsics are
// inlined into these kernels (seen in the C++20 build against LibTorch 2.15).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#endif

namespace lorascope {
namespace {

#ifdef LORASCOPE_SWIGLU_KERNELS
constexpr int64_t kGrain = 1 << 15;

// The kernels are compiled for AVX-512 whatever the build's flags; called only when the CPU has it.
#pragma GCC push_options
#pragma GCC target("avx512f,avx2,fma")

// sigma(a) = 1 / (1 + exp(-a)) for 16 floats. exp(x) = 2^n p(r), x = n ln 2 + r, |r| <= ln 2 / 2,
// p Cephes' expf polynomial. x is clamped to [-88, 89]: below, sigma is 1 in float32; above,
// scalef overflows to inf and sigma is 0, as ATen's 1 / (1 + expf(-a)) gives.
inline __m512 sigmoid16(__m512 a) {
  const __m512 x = _mm512_min_ps(_mm512_max_ps(_mm512_sub_ps(_mm512_setzero_ps(), a), _mm512_set1_ps(-88.0f)),
                                 _mm512_set1_ps(89.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  const __m512 e = _mm512_scalef_ps(p, n);
  return _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

// y = a sigma(a) b over [begin, end); the tail through a mask.
void forward_range(const float* a, const float* b, float* y, int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; i += 16) {
    const __mmask16 m = end - i >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (end - i)) - 1);
    const __m512 av = _mm512_maskz_loadu_ps(m, a + i), bv = _mm512_maskz_loadu_ps(m, b + i);
    _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(_mm512_mul_ps(av, sigmoid16(av)), bv));
  }
}

// da = g b sigma (1 + a (1 - sigma)), db = g a sigma.
void backward_range(const float* g, const float* a, const float* b, float* da, float* db, int64_t begin,
                    int64_t end) {
  const __m512 one = _mm512_set1_ps(1.0f);
  for (int64_t i = begin; i < end; i += 16) {
    const __mmask16 m = end - i >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (end - i)) - 1);
    const __m512 gv = _mm512_maskz_loadu_ps(m, g + i), av = _mm512_maskz_loadu_ps(m, a + i);
    const __m512 bv = _mm512_maskz_loadu_ps(m, b + i);
    const __m512 s = sigmoid16(av);
    const __m512 silu = _mm512_mul_ps(av, s);
    const __m512 dsilu = _mm512_mul_ps(s, _mm512_fmadd_ps(av, _mm512_sub_ps(one, s), one));
    if (da) _mm512_mask_storeu_ps(da + i, m, _mm512_mul_ps(_mm512_mul_ps(gv, bv), dsilu));
    if (db) _mm512_mask_storeu_ps(db + i, m, _mm512_mul_ps(gv, silu));
  }
}

#pragma GCC pop_options

#endif

#ifdef LORASCOPE_SWIGLU_KERNELS
struct SwigluFunction : public torch::autograd::Function<SwigluFunction> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& a, const at::Tensor& b) {
    auto y = at::empty_like(a);
    const float *ap = a.data_ptr<float>(), *bp = b.data_ptr<float>();
    float* yp = y.data_ptr<float>();
    at::parallel_for(0, a.numel(), kGrain, [&](int64_t begin, int64_t end) { forward_range(ap, bp, yp, begin, end); });
    ctx->save_for_backward({a, b});
    return y;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const auto &a = saved[0], &b = saved[1];
    const auto g = grad_outputs[0].contiguous();
    at::Tensor da = ctx->needs_input_grad(0) ? at::empty_like(a) : at::Tensor();
    at::Tensor db = ctx->needs_input_grad(1) ? at::empty_like(b) : at::Tensor();
    float* dap = da.defined() ? da.data_ptr<float>() : nullptr;
    float* dbp = db.defined() ? db.data_ptr<float>() : nullptr;
    const float *gp = g.data_ptr<float>(), *ap = a.data_ptr<float>(), *bp = b.data_ptr<float>();
    at::parallel_for(0, a.numel(), kGrain,
                     [&](int64_t begin, int64_t end) { backward_range(gp, ap, bp, dap, dbp, begin, end); });
    return {da, db};
  }
};
#endif

}  // namespace

bool fused_swiglu_applies(const at::Tensor& a, const at::Tensor& b) {
#ifndef LORASCOPE_SWIGLU_KERNELS
  return false;  // not built for AVX-512 (another compiler or CPU family)
#endif
  return cpu_has_avx512() && a.device().is_cpu() && b.device().is_cpu() && a.scalar_type() == at::kFloat &&
         b.scalar_type() == at::kFloat && a.sizes() == b.sizes() && a.is_contiguous() && b.is_contiguous();
}

at::Tensor swiglu(const at::Tensor& a, const at::Tensor& b) {
#ifdef LORASCOPE_SWIGLU_KERNELS
  if (fused_swiglu_applies(a, b)) return SwigluFunction::apply(a, b);
#endif
  return at::silu(a) * b;
}

}  // namespace lorascope
