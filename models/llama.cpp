#include "models/llama.h"

#include <stdexcept>

#include "models/fused_rotary.h"
#include "models/fused_swiglu.h"
#include "models/rope.h"

namespace lorascope {

namespace {
std::shared_ptr<torch::nn::Module> holder(const std::string& name) {
  return std::make_shared<torch::nn::Module>(name);
}
}  // namespace

LlamaDecoderLayer::LlamaDecoderLayer(const TransformerConfig& c, at::Generator& gen)
    : torch::nn::Module("LlamaDecoderLayer"),
      num_heads(c.num_heads),
      num_kv_heads(c.num_kv_heads),
      head_dim(c.head_dim()) {
  const int64_t C = c.hidden_size, kv = c.num_kv_heads * c.head_dim(), I = c.intermediate_size;
  const int64_t Q = c.num_heads * c.head_dim();  // = C unless the config sets head_dim
  auto attn = register_module("self_attn", holder("LlamaAttention"));
  q_proj = attn->register_module("q_proj", std::make_shared<Linear>(C, Q, false, gen));
  k_proj = attn->register_module("k_proj", std::make_shared<Linear>(C, kv, false, gen));
  v_proj = attn->register_module("v_proj", std::make_shared<Linear>(C, kv, false, gen));
  o_proj = attn->register_module("o_proj", std::make_shared<Linear>(Q, C, false, gen));
  auto mlp = register_module("mlp", holder("LlamaMLP"));
  gate_proj = mlp->register_module("gate_proj", std::make_shared<Linear>(C, I, false, gen));
  up_proj = mlp->register_module("up_proj", std::make_shared<Linear>(C, I, false, gen));
  down_proj = mlp->register_module("down_proj", std::make_shared<Linear>(I, C, false, gen));
  input_layernorm = register_module("input_layernorm", std::make_shared<RMSNorm>(C, c.rms_norm_eps));
  post_attention_layernorm =
      register_module("post_attention_layernorm", std::make_shared<RMSNorm>(C, c.rms_norm_eps));
}

at::Tensor LlamaDecoderLayer::forward(const at::Tensor& h, const at::Tensor& cos,
                                      const at::Tensor& sin, const at::Tensor& mask) {
  const int64_t B = h.size(0), T = h.size(1);
  const auto x = input_layernorm->forward(h);                                         // (B, T, C)
  const auto heads = [&](const at::Tensor& t, int64_t n) {
    return t.view({B, T, n, head_dim}).transpose(1, 2);                               // (B, n, T, hd)
  };
  // On the CPU the rotation runs as one node on the (B, T, n, hd) layout (models/fused_rotary.h).
  const auto rotated_heads = [&](const at::Tensor& t, int64_t n) {
    const auto bt = t.view({B, T, n, head_dim});
    if (fused_rotary_applies(bt, cos, sin)) return fused_rotary(bt, cos, sin).transpose(1, 2);
    return apply_rotary(bt.transpose(1, 2), cos, sin);
  };
  const auto q = rotated_heads(q_proj->forward(x), num_heads);                        // (B, H, T, hd)
  const auto k = rotated_heads(k_proj->forward(x), num_kv_heads);                     // (B, Hkv, T, hd)
  const auto v = heads(v_proj->forward(x), num_kv_heads);                             // (B, Hkv, T, hd)
  const int64_t n_rep = num_heads / num_kv_heads;
  // No mask: the batch has no padding and the attention is only causal.
  const auto y = attention(q, repeat_kv(k, n_rep), repeat_kv(v, n_rep), mask, !mask.defined());  // (B, H, T, hd)
  const auto h1 = h + o_proj->forward(y.transpose(1, 2).reshape({B, T, num_heads * head_dim}));         // (B, T, C)
  const auto x1 = post_attention_layernorm->forward(h1);
  return h1 + down_proj->forward(swiglu(gate_proj->forward(x1), up_proj->forward(x1)));  // silu(gate) * up
}

LlamaModel::LlamaModel(const TransformerConfig& c, at::Generator& gen)
    : torch::nn::Module("LlamaModel"), config(c) {
  embed_tokens = register_module(
      "embed_tokens", std::make_shared<Embedding>(c.vocab_size, c.hidden_size, c.pad_token_id, gen));
  auto list = register_module("layers", holder("ModuleList"));
  for (int64_t i = 0; i < c.num_layers; ++i) {
    layers.push_back(list->register_module(std::to_string(i), std::make_shared<LlamaDecoderLayer>(c, gen)));
  }
  norm = register_module("norm", std::make_shared<RMSNorm>(c.hidden_size, c.rms_norm_eps));
}

at::Tensor LlamaModel::forward(const at::Tensor& input_ids, const at::Tensor& attention_mask) {
  const auto mask01 = checked_attention_mask(input_ids, attention_mask, "llama");
  auto h = embed_tokens->forward(input_ids);  // (B, T, C)
  const auto cs = rotary_cos_sin(input_ids.size(1), rope_inv_freq(config), h.options());
  // Without padding, attention takes is_causal and no mask (the fast kernels need no mask).
  // A host sync only when the caller passed a mask (it may hold padding).
  const bool padded = attention_mask.defined() && mask01.eq(0).any().item<bool>();
  const auto mask = padded ? causal_padding_mask(mask01, h.scalar_type()) : at::Tensor();  // (B, 1, T, T)
  for (auto& layer : layers) h = layer->forward(h, cs.first, cs.second, mask);
  return norm->forward(h);
}

LlamaSequenceModel::LlamaSequenceModel(const TransformerConfig& c, const std::string& head,
                                       int64_t num_labels, at::Generator& gen)
    : head_(head) {
  if (head != "causal_lm" && head != "classification") {
    throw std::invalid_argument("llama: head: expected \"causal_lm\" or \"classification\", got \"" + head + "\"");
  }
  if (head == "classification" && num_labels < 1) {
    throw std::invalid_argument("llama: num_labels: expected >= 1 for classification, got " +
                                std::to_string(num_labels));
  }
  model = register_module("model", std::make_shared<LlamaModel>(c, gen));
  if (head == "classification") {
    score = register_module("score", std::make_shared<Linear>(c.hidden_size, num_labels, false, gen));
  } else if (!c.tie_embeddings) {
    lm_head = register_module("lm_head", std::make_shared<Linear>(c.hidden_size, c.vocab_size, false, gen));
  }
}

std::string LlamaSequenceModel::head_module() const {
  if (head_ == "classification") return "score";
  return lm_head ? "lm_head" : "model.embed_tokens";
}

at::Tensor last_token_index(const at::Tensor& attention_mask) {
  const auto pos = at::arange(attention_mask.size(1), attention_mask.options().dtype(at::kLong));
  return (pos * attention_mask.ne(0)).argmax(-1);  // (B)
}

at::Tensor LlamaSequenceModel::forward(const at::Tensor& input_ids, const at::Tensor& attention_mask) {
  const auto mask01 = checked_attention_mask(input_ids, attention_mask, "llama");
  const auto h = model->forward(input_ids, mask01);  // (B, T, C)
  if (score) {
    const auto idx = last_token_index(mask01).view({-1, 1, 1}).expand({h.size(0), 1, h.size(2)});
    return score->forward(h.gather(1, idx).squeeze(1));  // (B, C) -> (B, num_labels)
  }
  // (B, T, vocab); tied: the logits are h E^T with the embedding matrix E (vocab, C).
  return lm_head ? lm_head->forward(h) : at::linear(h, model->embed_tokens->weight);
}

}  // namespace lorascope
