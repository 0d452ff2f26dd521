// lorascope hf embed: a BERT-family checkpoint's last hidden states and pooled sentence
// embeddings (models/sentence_pooling.h) on given token ids, for tests/interop/check_embeddings.py
// to compare with transformers + sentence-transformers' pooling.
#pragma once

#include <ATen/ATen.h>

#include <string>

namespace lorascope::cli {

struct HfEmbedOptions {
  std::string model, out;
  std::string pooling;  // "pooler" | "cls" | "mean"; "" = the checkpoint's (modules.json, else pooler)
  int normalize = -1;   // 1 / 0 force the Normalize step on / off; -1 = the checkpoint's
};

// ids, mask (B, T) int64 -> out.safetensors: "last_hidden_state" (B, T, C) and "embeddings"
// (B, C), float32. Throws ConfigError for bad input.
void hf_embed(const HfEmbedOptions& o, const at::Tensor& ids, const at::Tensor& mask);

}  // namespace lorascope::cli
