// Tiny transformer configurations shared by the model and LoRA tests.
#pragma once

#include <string>

#include "models/transformer_config.h"

namespace lorascope::fixtures {

inline TransformerConfig tiny_config(const std::string& arch) {
  TransformerConfig c;
  c.arch = arch;
  c.vocab_size = 50;
  c.hidden_size = 16;
  c.num_layers = 2;
  c.num_heads = 4;
  c.num_kv_heads = arch == "llama" ? 2 : 4;
  c.intermediate_size = 24;
  c.max_positions = 40;
  c.pad_token_id = arch == "llama" ? 0 : 1;
  return c;
}

}  // namespace lorascope::fixtures
