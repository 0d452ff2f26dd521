// What the trainer sees of a transformer: token ids and a padding mask in, logits out.
//   causal_lm:       (B, T) -> (B, T, vocab)          (llama only)
//   classification:  (B, T) -> (B, num_labels)        llama pools the last non-pad token
//                                                     (HF LlamaForSequenceClassification, head
//                                                     "score"); roberta uses <s> (HF
//                                                     RobertaForSequenceClassification, head
//                                                     "classifier.dense" / "classifier.out_proj")
//   masked_lm:       (B, T) -> (B, T, vocab)          (roberta / bert only: HF *ForMaskedLM)
// Parameter names follow Hugging Face exactly (model.layers.0.self_attn.q_proj.weight,
// roberta.encoder.layer.0.attention.self.query.weight, ...).
#pragma once

#include <torch/nn/module.h>

#include <memory>
#include <string>

#include "models/transformer_config.h"

namespace lorascope {

class SequenceModel : public torch::nn::Module {
 public:
  // input_ids: (B, T) int64; attention_mask: (B, T) int64/bool, 1 = real token, 0 = padding.
  virtual at::Tensor forward(const at::Tensor& input_ids, const at::Tensor& attention_mask) = 0;
  // With segment ids (B, T) int64 (BERT's token_type_ids; undefined = all 0). Models without
  // token types (llama) take only an undefined tensor.
  virtual at::Tensor forward(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                             const at::Tensor& token_type_ids);
  virtual const TransformerConfig& config() const = 0;
  virtual std::string head() const = 0;  // "causal_lm" | "classification" | "masked_lm"
  // Names of the head's parameters' modules ("lm_head", "score", "classifier"): trained in
  // full during fine-tuning when listed in modules_to_save.
  virtual std::string head_module() const = 0;
};

// head: "causal_lm" or "classification" (num_labels > 0). Initialised like HF (normal(0, 0.02),
// zero biases, unit norms) from gen.
std::shared_ptr<SequenceModel> make_model(const TransformerConfig& config, const std::string& head,
                                          int64_t num_labels, at::Generator& gen);

}  // namespace lorascope
