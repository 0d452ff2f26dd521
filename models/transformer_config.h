// Size and shape of the small transformers (and, later, of Hugging Face checkpoints):
//   arch "llama":   decoder, RMSNorm, rotary positions, SwiGLU MLP, grouped KV heads, causal mask
//   arch "roberta": encoder, learned positions, LayerNorm, GELU, padding mask (BERT too, with
//                   positions "absolute")
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

namespace lorascope {

struct TransformerConfig {
  std::string arch = "llama";
  int64_t vocab_size = 4096;
  int64_t hidden_size = 128;
  int64_t num_layers = 4;
  int64_t num_heads = 4;
  int64_t num_kv_heads = 4;        // llama: grouped-query attention when < num_heads
  int64_t intermediate_size = 344; // MLP width
  int64_t max_positions = 256;
  double rms_norm_eps = 1e-6;      // llama
  double layer_norm_eps = 1e-5;    // roberta
  double rope_theta = 10000.0;     // llama
  bool tie_embeddings = true;      // llama: lm_head shares embed_tokens
  int64_t pad_token_id = 0;
  int64_t type_vocab_size = 1;     // roberta token types
  // llama: per-head width when it is not hidden_size / num_heads (HF's head_dim); 0 = derived.
  int64_t explicit_head_dim = 0;
  // llama: HF's rope_scaling. "default" (none), "linear" (frequencies / factor) or "llama3"
  // (models/rope.h); the factors are used only by the types that name them.
  std::string rope_type = "default";
  double rope_factor = 1.0;
  double rope_low_freq_factor = 1.0;
  double rope_high_freq_factor = 4.0;
  int64_t rope_original_max_positions = 8192;
  // roberta: "padding_offset" (RoBERTa: pad_token_id + 1 + index among the tokens) or
  // "absolute" (BERT: 0 .. T-1).
  std::string positions = "padding_offset";
  // roberta: what the classification head reads (models/sentence_pooling.h): "pooler" (HF's
  // heads: tanh(dense(h_0)), BERT's pooler / RoBERTa's classifier.dense), "cls" (h_0) or "mean"
  // (sentence-transformers' mask-weighted mean); normalize_pooled L2-normalizes it first
  // (sentence-transformers' Normalize). llama pools its last token and takes neither.
  std::string pooling = "pooler";
  bool normalize_pooled = false;

  nlohmann::json to_json() const;
  // Throws std::runtime_error("WHERE: KEY: expected ...") on missing/invalid keys.
  static TransformerConfig from_json(const nlohmann::json& j, const std::string& where);
  int64_t head_dim() const { return explicit_head_dim > 0 ? explicit_head_dim : hidden_size / num_heads; }
};

}  // namespace lorascope
