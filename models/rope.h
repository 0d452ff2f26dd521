// Rotary frequencies of a LLaMA config, as HF transformers computes them
// (modeling_rope_utils.py), in float64:
//   default: inv_freq_i = theta^(-2i / hd), i = 0 .. hd/2 - 1
//   linear:  inv_freq_i / factor
//   llama3:  with wavelen_i = 2 pi / inv_freq_i, L = original_max_position_embeddings,
//            low = L / low_freq_factor, high = L / high_freq_factor:
//              wavelen_i > low           -> inv_freq_i / factor              (long wavelengths)
//              wavelen_i < high          -> inv_freq_i                       (short wavelengths)
//              otherwise                 -> (1 - s) inv_freq_i / factor + s inv_freq_i,
//                                           s = (L / wavelen_i - low_freq_factor) /
//                                               (high_freq_factor - low_freq_factor)
// (LLaMA 3.1/3.2's rope_scaling; the attention scaling of llama3 is 1, so cos/sin are unscaled.)
#pragma once

#include <ATen/ATen.h>

#include "models/transformer_config.h"

namespace lorascope {

at::Tensor rope_inv_freq(const TransformerConfig& config);  // (head_dim / 2) float64

}  // namespace lorascope
