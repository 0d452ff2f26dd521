#include "data/shuffle.h"

#include <numeric>
#include <utility>

namespace lorascope {

uint64_t mix_seed(uint64_t seed, uint64_t stream) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ULL * (stream + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

uint64_t uniform_below(std::mt19937_64& rng, uint64_t n) {
  // Largest multiple of n that fits: draws at or above it would favour small residues.
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t x = rng();
  while (x >= limit) x = rng();
  return x % n;
}

void deterministic_shuffle(std::vector<int64_t>& v, std::mt19937_64& rng) {
  for (size_t i = v.size(); i > 1; --i) {
    std::swap(v[i - 1], v[uniform_below(rng, i)]);
  }
}

std::vector<int64_t> permutation(int64_t n, uint64_t rng_seed, bool shuffle) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), int64_t{0});
  if (shuffle) {
    std::mt19937_64 rng(rng_seed);
    deterministic_shuffle(v, rng);
  }
  return v;
}

}  // namespace lorascope
