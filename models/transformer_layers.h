// The pieces llama and roberta are built from: embeddings and norms with HF's parameter names,
// rotary positions, grouped KV heads, additive masks, and attention with its plain reference.
// Shapes: B batch, T sequence, C hidden, H heads, Hkv key/value heads, hd = C / H.
#pragma once

#include <ATen/core/Generator.h>
#include <torch/nn/module.h>

#include <string>
#include <utility>

namespace lorascope {

// weight (num, dim) ~ N(0, 0.02) with the padding row zero and left out of the gradient, like
// HF's nn.Embedding(padding_idx=pad_token_id) after _init_weights.
class Embedding : public torch::nn::Module {
 public:
  Embedding(int64_t num, int64_t dim, int64_t padding_idx, at::Generator& gen);
  at::Tensor forward(const at::Tensor& ids) const;  // (B, T) -> (B, T, dim)
  at::Tensor weight;
  int64_t padding_idx;
};

// y = weight * x / sqrt(mean(x^2) + eps), computed in at least float32 (HF LlamaRMSNorm).
class RMSNorm : public torch::nn::Module {
 public:
  RMSNorm(int64_t dim, double eps);
  at::Tensor forward(const at::Tensor& x) const;  // (..., dim)
  at::Tensor weight;
  double eps;
};

class LayerNorm : public torch::nn::Module {
 public:
  LayerNorm(int64_t dim, double eps);
  at::Tensor forward(const at::Tensor& x) const;  // (..., dim)
  at::Tensor weight, bias;
  double eps;
};

// HF's rotary tables for positions 0..T-1: cos, sin (T, hd) with
//   angle[t, i] = t * theta^(-2 (i mod hd/2) / hd)
// (each frequency twice, for the two halves that rotate_half pairs). Computed in float64 and
// cast to dtype.
std::pair<at::Tensor, at::Tensor> rotary_cos_sin(int64_t T, int64_t head_dim, double theta,
                                                 const at::TensorOptions& options);
// The same from given frequencies inv_freq (hd/2) (scaled ones: models/rope.h).
std::pair<at::Tensor, at::Tensor> rotary_cos_sin(int64_t T, const at::Tensor& inv_freq,
                                                 const at::TensorOptions& options);
at::Tensor rotate_half(const at::Tensor& x);  // (..., hd): [x1, x2] -> [-x2, x1]
// x (B, H, T, hd) -> x cos + rotate_half(x) sin
at::Tensor apply_rotary(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);
// (B, Hkv, T, hd) -> (B, Hkv * n_rep, T, hd); KV head j serves query heads j n_rep .. j n_rep + n_rep - 1.
at::Tensor repeat_kv(const at::Tensor& x, int64_t n_rep);

// Additive masks from attention_mask (B, T) (1 = token, 0 = padding): 0 where a query may
// attend, the dtype's lowest finite value elsewhere (finite, so a row with nothing to attend
// gives a uniform softmax instead of NaN).
at::Tensor padding_mask(const at::Tensor& attention_mask, at::ScalarType dtype);         // (B, 1, 1, T)
at::Tensor causal_padding_mask(const at::Tensor& attention_mask, at::ScalarType dtype);  // (B, 1, T, T)

// softmax(q k^T / sqrt(hd) + mask) v for q, k, v (B, H, T, hd) and an additive mask that
// broadcasts to (B, H, T, T) (or undefined); is_causal also hides keys after each query.
// attention() takes the fused kernel when LibTorch has one (at::scaled_dot_product_attention,
// >= 2.0), attention_reference() is the plain path.
at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask,
                     bool is_causal = false);
at::Tensor attention_reference(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                               const at::Tensor& mask, bool is_causal = false);
bool has_fused_attention();

// Checks input_ids (B, T) int64 and attention_mask (same shape, or undefined = all ones) and
// returns the mask as int64. `where` names the model in errors.
at::Tensor checked_attention_mask(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                                  const std::string& where);

}  // namespace lorascope
