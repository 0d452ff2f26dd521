// Sentence embeddings as sentence-transformers computes them (its models/Pooling.py and
// models/Normalize.py), for BERT-family encoders such as all-MiniLM-L6-v2:
//   mean:  e_b = sum_t m_bt h_bt / max(sum_t m_bt, 1e-9)       (padding m_bt = 0 left out)
//   cls:   e_b = h_b0
//   Normalize: e_b / max(||e_b||_2, 1e-12)                      (torch.nn.functional.normalize)
// A sentence-transformers checkpoint says which of these it uses in modules.json
// (Transformer -> Pooling -> Normalize) and its Pooling module's config.json.
#pragma once

#include <ATen/ATen.h>

#include <string>

#include "models/transformer_config.h"

namespace lorascope {

// h (B, T, C), attention_mask (B, T) 1 = token, 0 = padding (undefined: no padding) -> (B, C).
// A row without tokens gives zeros, as sentence-transformers' clamp does.
at::Tensor mean_pool(const at::Tensor& h, const at::Tensor& attention_mask);
// pooling "cls" | "mean" (the "pooler" of a model is its own module, models/roberta.h).
at::Tensor pool_tokens(const at::Tensor& h, const at::Tensor& attention_mask, const std::string& pooling);
// x (B, C) -> rows of unit L2 norm (a zero row stays zero).
at::Tensor l2_normalize(const at::Tensor& x);

// When dir holds a sentence-transformers modules.json, sets config.pooling ("mean" | "cls") and
// config.normalize_pooled from it; otherwise leaves config alone. Throws std::runtime_error
// naming the file and key for a module or pooling mode lorascope does not implement (Dense,
// max or weighted-mean pooling, several modes at once), or a Pooling width other than
// hidden_size.
void read_sentence_transformers_modules(const std::string& dir, TransformerConfig& config);

}  // namespace lorascope
