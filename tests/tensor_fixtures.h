// Seeded float64 tensors and the error measure the numerical tests share.
#pragma once

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <cstdint>
#include <tuple>
#include <vector>

namespace lorascope {

// Standard normal float64 entries from a generator of its own seeded `seed`, times scale.
inline at::Tensor randn(std::vector<int64_t> shape, uint64_t seed, double scale = 1.0) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  return at::randn(shape, gen, at::kDouble) * scale;
}

// m x n float64 matrix with singular values s (descending) and random singular vectors (U from
// seed, V from seed + 1).
inline at::Tensor with_spectrum(int64_t m, int64_t n, const std::vector<double>& s, uint64_t seed) {
  const int64_t k = static_cast<int64_t>(s.size());
  auto U = std::get<0>(at::linalg_qr(randn({m, k}, seed)));
  auto V = std::get<0>(at::linalg_qr(randn({n, k}, seed + 1)));
  return at::matmul(U * at::tensor(s, at::kDouble).unsqueeze(0), V.t());
}

inline double max_abs(const at::Tensor& t) { return t.abs().max().item<double>(); }

}  // namespace lorascope
