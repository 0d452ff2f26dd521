// Spectra of every LoRA adapter's update delta W = scaling * B A (B: out x r, A: r x in): all r
// singular values, effective rank, stable rank and Frobenius norm, from thin QR of B and A^T
// and an r x r SVD (models/spectral_stats.h), never an SVD of the out x in matrix.
#pragma once

#include <nlohmann/json.hpp>

#include <vector>

#include "models/lora.h"
#include "models/spectral_stats.h"

namespace lorascope {

SpectralStats adapter_stats(const AdapterRef& adapter);
// Every adapter's singular values (scaled by |scaling|), in adapter order. CPU adapters take the
// per-adapter Eigen path; on an accelerator, adapters of equal shapes are stacked and solved as
// one batch, and all values cross to the host in one transfer.
std::vector<std::vector<double>> adapter_singular_values(const std::vector<AdapterRef>& adapters,
                                                         bool batched);
// {"<adapter name>": {"sv": [...], "erank": .., "stable_rank": .., "fro": ..}, ...}
nlohmann::json adapter_spectra(const std::vector<AdapterRef>& adapters);

}  // namespace lorascope
