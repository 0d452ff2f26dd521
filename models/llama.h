// LLaMA as in HF transformers (modeling_llama.py), pre-norm decoder:
//   h = embed_tokens(ids)
//   per layer: h += o_proj(attn(rotary(q_proj(rms(h))), rotary(k_proj(...)), v_proj(...)))
//              h += down_proj(silu(gate_proj(rms(h))) * up_proj(rms(h)))
//   out = norm(h) -> lm_head (tied to embed_tokens when tie_embeddings) or score (last token)
// The classifier pools the last position with attention_mask 1 (HF looks for the last
// input_id != pad_token_id: the same for consistently padded batches, right or left padded).
// Attention is causal and masks padded keys; K/V have num_kv_heads heads, each shared by
// num_heads / num_kv_heads query heads.
#pragma once

#include <memory>
#include <vector>

#include "models/linear.h"
#include "models/sequence_model.h"
#include "models/transformer_layers.h"

namespace lorascope {

// One decoder layer; submodules self_attn.{q,k,v,o}_proj, mlp.{gate,up,down}_proj,
// input_layernorm, post_attention_layernorm (HF's registration order).
class LlamaDecoderLayer : public torch::nn::Module {
 public:
  LlamaDecoderLayer(const TransformerConfig& c, at::Generator& gen);
  // h (B, T, C); cos, sin (T, hd); mask additive (B, 1, T, T), or undefined for causal only
  at::Tensor forward(const at::Tensor& h, const at::Tensor& cos, const at::Tensor& sin,
                     const at::Tensor& mask);

  std::shared_ptr<Linear> q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj;
  std::shared_ptr<RMSNorm> input_layernorm, post_attention_layernorm;
  int64_t num_heads, num_kv_heads, head_dim;
};

// HF's LlamaModel: embed_tokens, layers.N, norm.
class LlamaModel : public torch::nn::Module {
 public:
  LlamaModel(const TransformerConfig& c, at::Generator& gen);
  at::Tensor forward(const at::Tensor& input_ids, const at::Tensor& attention_mask);  // (B, T, C)

  TransformerConfig config;
  std::shared_ptr<Embedding> embed_tokens;
  std::vector<std::shared_ptr<LlamaDecoderLayer>> layers;
  std::shared_ptr<RMSNorm> norm;
};

// LlamaForCausalLM ("model", "lm_head") or LlamaForSequenceClassification ("model", "score").
class LlamaSequenceModel : public SequenceModel {
 public:
  LlamaSequenceModel(const TransformerConfig& c, const std::string& head, int64_t num_labels,
                     at::Generator& gen);
  using SequenceModel::forward;
  at::Tensor forward(const at::Tensor& input_ids, const at::Tensor& attention_mask) override;
  const TransformerConfig& config() const override { return model->config; }
  std::string head() const override { return head_; }
  // "lm_head", "score", or "model.embed_tokens" for a tied causal LM (whose head is the embedding).
  std::string head_module() const override;

  std::shared_ptr<LlamaModel> model;
  std::shared_ptr<Linear> lm_head;  // null when tied or for classification
  std::shared_ptr<Linear> score;    // classification only: (num_labels, C), no bias

 private:
  std::string head_;
};

// Index of the last token with mask 1 in each row (0 for a row of padding): (B, T) -> (B).
at::Tensor last_token_index(const at::Tensor& attention_mask);

}  // namespace lorascope
