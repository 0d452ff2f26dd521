// RoBERTa as in HF transformers (modeling_roberta.py), post-norm encoder:
//   h = LayerNorm(word_embeddings(ids) + position_embeddings(pos) + token_type_embeddings(types))
//   per layer: h = LayerNorm(h + dense(attn(query(h), key(h), value(h))))        (attention)
//              h = LayerNorm(h + dense(gelu(dense(h))))                            (MLP)
//   logits = out_proj(tanh(dense(h[:, 0])))                                         (<s> token)
//   masked_lm: logits = LayerNorm(gelu(dense(h))) E^T + bias, E = word_embeddings  (lm_head)
// pos = pad_token_id + cumsum(mask) for tokens, pad_token_id for padding (RoBERTa's offset), so
// max_positions must be at least T + pad_token_id + 1. BERT (positions "absolute") uses 0 .. T-1
// and is otherwise the same network (its pooler + classifier are classifier.dense / out_proj).
// Padded keys are masked out additively.
// No dropout: the harness compares optimizers, and dropout would only add noise to that.
#pragma once

#include <memory>
#include <vector>

#include "models/linear.h"
#include "models/sequence_model.h"
#include "models/transformer_layers.h"

namespace lorascope {

// encoder.layer.N: attention.self.{query,key,value}, attention.output.{dense,LayerNorm},
// intermediate.dense, output.{dense,LayerNorm} (HF's registration order).
class RobertaLayer : public torch::nn::Module {
 public:
  RobertaLayer(const TransformerConfig& c, at::Generator& gen);
  at::Tensor forward(const at::Tensor& h, const at::Tensor& mask);  // h (B, T, C), mask (B, 1, 1, T)

  std::shared_ptr<Linear> query, key, value, attn_dense, inter_dense, out_dense;
  std::shared_ptr<LayerNorm> attn_norm, out_norm;
  int64_t num_heads, head_dim;
};

// HF's RobertaModel without the pooler: embeddings.*, encoder.layer.N.
class RobertaModel : public torch::nn::Module {
 public:
  RobertaModel(const TransformerConfig& c, at::Generator& gen);
  // token_type_ids (B, T) in [0, type_vocab_size); undefined = all 0 (RoBERTa, one BERT text).
  at::Tensor forward(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                     const at::Tensor& token_type_ids = {});  // (B, T, C)

  TransformerConfig config;
  std::shared_ptr<Embedding> word_embeddings, position_embeddings, token_type_embeddings;
  std::shared_ptr<LayerNorm> embed_norm;
  std::vector<std::shared_ptr<RobertaLayer>> layers;
};

// RobertaForSequenceClassification: "roberta", "classifier.dense", "classifier.out_proj";
// config.pooling "cls" / "mean" (models/sentence_pooling.h) has no classifier.dense: the head
// is out_proj on the (optionally normalized) pooled tokens.
// RobertaForMaskedLM (head "masked_lm"): "roberta", "lm_head.dense", "lm_head.layer_norm",
// "lm_head.bias", the decoder tied to roberta.embeddings.word_embeddings (as transformers ties it).
class RobertaSequenceModel : public SequenceModel {
 public:
  RobertaSequenceModel(const TransformerConfig& c, int64_t num_labels, at::Generator& gen)
      : RobertaSequenceModel(c, "classification", num_labels, gen) {}
  // head "classification" (num_labels >= 1) or "masked_lm"
  RobertaSequenceModel(const TransformerConfig& c, const std::string& head, int64_t num_labels,
                       at::Generator& gen);
  // classification (B, num_labels), masked_lm (B, T, vocab)
  at::Tensor forward(const at::Tensor& input_ids, const at::Tensor& attention_mask) override;
  at::Tensor forward(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                     const at::Tensor& token_type_ids) override;
  // What the head reads: h (B, T, C) of roberta->forward -> (B, C).
  at::Tensor pooled(const at::Tensor& h, const at::Tensor& attention_mask);
  const TransformerConfig& config() const override { return roberta->config; }
  std::string head() const override { return head_; }
  std::string head_module() const override { return head_ == "masked_lm" ? "lm_head" : "classifier"; }

  std::shared_ptr<RobertaModel> roberta;
  std::shared_ptr<Linear> classifier_dense, classifier_out_proj;  // classification
  std::shared_ptr<Linear> lm_dense;                                // masked_lm
  std::shared_ptr<LayerNorm> lm_norm;
  at::Tensor lm_bias;  // (vocab)

 private:
  std::string head_;
};

// RoBERTa's position ids: (B, T) -> (B, T), pad_token_id + 1, + 2, ... over tokens, pad_token_id
// over padding.
at::Tensor roberta_position_ids(const at::Tensor& attention_mask, int64_t pad_token_id);

}  // namespace lorascope
