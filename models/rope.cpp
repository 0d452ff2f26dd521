#include "models/rope.h"

#include <cmath>
#include <stdexcept>

namespace lorascope {

at::Tensor rope_inv_freq(const TransformerConfig& c) {
  const int64_t hd = c.head_dim();
  const auto f64 = at::TensorOptions().dtype(at::kDouble);
  auto inv_freq = at::pow(c.rope_theta, -at::arange(0, hd, 2, f64) / double(hd));  // (hd/2)
  if (c.rope_type == "default") return inv_freq;
  if (c.rope_type == "linear") return inv_freq / c.rope_factor;
  if (c.rope_type != "llama3") throw std::invalid_argument("rope: unsupported rope_type \"" + c.rope_type + "\"");
  const double L = static_cast<double>(c.rope_original_max_positions);
  const double low_wavelen = L / c.rope_low_freq_factor, high_wavelen = L / c.rope_high_freq_factor;
  const auto wavelen = 2 * M_PI / inv_freq;
  auto scaled = at::where(wavelen > low_wavelen, inv_freq / c.rope_factor, inv_freq);
  const auto smooth = (L / wavelen - c.rope_low_freq_factor) / (c.rope_high_freq_factor - c.rope_low_freq_factor);
  const auto smoothed = (1 - smooth) * scaled / c.rope_factor + smooth * scaled;
  const auto medium = (wavelen >= high_wavelen).logical_and(wavelen <= low_wavelen);
  return at::where(medium, smoothed, scaled);
}

}  // namespace lorascope
