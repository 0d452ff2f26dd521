#include "models/transformer_layers.h"

#include "models/fused_rms_norm.h"

#include <torch/version.h>

#include <cmath>
#include <limits>
#include <stdexcept>

namespace lorascope {

namespace {
// Half precision is normalised and softmaxed in float32, as HF does.
at::ScalarType compute_type(at::ScalarType t) {
  return t == at::kHalf || t == at::kBFloat16 ? at::kFloat : t;
}
}  // namespace

Embedding::Embedding(int64_t num, int64_t dim, int64_t padding_idx_, at::Generator& gen)
    : torch::nn::Module("Embedding"), padding_idx(padding_idx_) {
  auto w = at::empty({num, dim}).normal_(0, 0.02, gen);
  if (padding_idx >= 0 && padding_idx < num) w[padding_idx].zero_();
  weight = register_parameter("weight", w);
}

at::Tensor Embedding::forward(const at::Tensor& ids) const {
  return at::embedding(weight, ids, padding_idx);
}

RMSNorm::RMSNorm(int64_t dim, double eps_) : torch::nn::Module("RMSNorm"), eps(eps_) {
  weight = register_parameter("weight", at::ones({dim}));
}

at::Tensor RMSNorm::forward(const at::Tensor& x) const {
  if (fused_rms_norm_applies(x, weight)) return fused_rms_norm(x, weight, eps);
  const auto xf = x.to(compute_type(x.scalar_type()));
  const auto y = xf * at::rsqrt(xf.pow(2).mean(-1, /*keepdim=*/true) + eps);
  return weight * y.to(x.scalar_type());
}

LayerNorm::LayerNorm(int64_t dim, double eps_) : torch::nn::Module("LayerNorm"), eps(eps_) {
  weight = register_parameter("weight", at::ones({dim}));
  bias = register_parameter("bias", at::zeros({dim}));
}

at::Tensor LayerNorm::forward(const at::Tensor& x) const {
  return at::layer_norm(x, {weight.size(0)}, weight, bias, eps);
}

std::pair<at::Tensor, at::Tensor> rotary_cos_sin(int64_t T, int64_t head_dim, double theta,
                                                 const at::TensorOptions& options) {
  if (head_dim % 2 != 0) {
    throw std::invalid_argument("rotary: head_dim must be even but got " + std::to_string(head_dim));
  }
  const auto f64 = at::TensorOptions().dtype(at::kDouble);
  return rotary_cos_sin(T, at::pow(theta, -at::arange(0, head_dim, 2, f64) / double(head_dim)), options);
}

std::pair<at::Tensor, at::Tensor> rotary_cos_sin(int64_t T, const at::Tensor& inv_freq,
                                                 const at::TensorOptions& options) {
  const auto f64 = at::TensorOptions().dtype(at::kDouble);
  const auto freqs = at::outer(at::arange(T, f64), inv_freq.to(at::kDouble).cpu());            // (T, hd/2)
  const auto angle = at::cat({freqs, freqs}, -1);                                              // (T, hd)
  return {angle.cos().to(options), angle.sin().to(options)};
}

at::Tensor rotate_half(const at::Tensor& x) {
  const int64_t half = x.size(-1) / 2;
  return at::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}

at::Tensor apply_rotary(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  return x * cos + rotate_half(x) * sin;  // cos, sin (T, hd) broadcast over (B, H)
}

at::Tensor repeat_kv(const at::Tensor& x, int64_t n_rep) {
  if (n_rep == 1) return x;
  const int64_t B = x.size(0), Hkv = x.size(1), T = x.size(2), hd = x.size(3);
  return x.unsqueeze(2).expand({B, Hkv, n_rep, T, hd}).reshape({B, Hkv * n_rep, T, hd});
}

namespace {
double lowest(at::ScalarType dtype) {
  return dtype == at::kDouble ? std::numeric_limits<double>::lowest()
         : dtype == at::kHalf ? -65504.0
         : dtype == at::kBFloat16 ? -3.3895313892515355e38
                                  : double(std::numeric_limits<float>::lowest());
}

at::Tensor additive(const at::Tensor& allowed, at::ScalarType dtype) {
  return at::zeros(allowed.sizes(), allowed.options().dtype(dtype)).masked_fill(allowed.logical_not(), lowest(dtype));
}

at::Tensor causal_allowed(int64_t T, const at::Device& device) {
  const auto pos = at::arange(T, at::TensorOptions().dtype(at::kLong).device(device));
  return pos.unsqueeze(1) >= pos.unsqueeze(0);  // (T, T): query t sees keys <= t
}
}  // namespace

at::Tensor padding_mask(const at::Tensor& attention_mask, at::ScalarType dtype) {
  return additive(attention_mask.ne(0).view({attention_mask.size(0), 1, 1, attention_mask.size(1)}), dtype);
}

at::Tensor causal_padding_mask(const at::Tensor& attention_mask, at::ScalarType dtype) {
  const int64_t B = attention_mask.size(0), T = attention_mask.size(1);
  const auto keys = attention_mask.ne(0).view({B, 1, 1, T});
  return additive(causal_allowed(T, attention_mask.device()).view({1, 1, T, T}).logical_and(keys), dtype);
}

at::Tensor attention_reference(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                               const at::Tensor& mask, bool is_causal) {
  const auto ct = compute_type(q.scalar_type());
  auto scores = at::matmul(q, k.transpose(-2, -1)).to(ct) / std::sqrt(double(q.size(-1)));  // (B, H, T, T)
  if (mask.defined()) scores = scores + mask;
  if (is_causal) scores = scores.masked_fill(causal_allowed(q.size(-2), q.device()).logical_not(), lowest(ct));
  return at::matmul(at::softmax(scores, -1).to(q.scalar_type()), v);  // (B, H, T, hd)
}

bool has_fused_attention() { return TORCH_VERSION_MAJOR >= 2; }

at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask,
                     bool is_causal) {
#if TORCH_VERSION_MAJOR >= 2
  // Default scale 1/sqrt(hd); {} is "no mask" for c10::optional (2.0-2.3) and std::optional.
  // is_causal without a mask lets CUDA take flash attention; SDPA refuses both at once, so a
  // causal call with a mask folds the causal part into the mask.
  if (!mask.defined()) return at::scaled_dot_product_attention(q, k, v, {}, 0.0, is_causal);
  auto m = mask.to(q.scalar_type());
  if (is_causal) {
    m = m.masked_fill(causal_allowed(q.size(-2), q.device()).logical_not(), lowest(q.scalar_type()));
  }
  return at::scaled_dot_product_attention(q, k, v, m);
#else
  // LibTorch 1.13 has only the private at::_scaled_dot_product_attention.
  return attention_reference(q, k, v, mask, is_causal);
#endif
}

at::Tensor checked_attention_mask(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                                  const std::string& where) {
  if (input_ids.dim() != 2 || input_ids.scalar_type() != at::kLong) {
    throw std::invalid_argument(where + ": input_ids: expected a (B, T) int64 tensor, got " +
                                c10::str(input_ids.sizes()) + " " + c10::toString(input_ids.scalar_type()));
  }
  if (input_ids.size(1) == 0) throw std::invalid_argument(where + ": input_ids: expected T >= 1");
  if (!attention_mask.defined()) return at::ones_like(input_ids);
  if (attention_mask.sizes() != input_ids.sizes()) {
    throw std::invalid_argument(where + ": attention_mask: expected shape " + c10::str(input_ids.sizes()) +
                                ", got " + c10::str(attention_mask.sizes()));
  }
  return attention_mask.to(input_ids.device(), at::kLong);
}

}  // namespace lorascope
