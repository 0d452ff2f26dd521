// Seeded permutations that are the same on every machine and standard library: std::shuffle and
// std::uniform_int_distribution are implementation-defined, std::mt19937_64's outputs are not.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace lorascope {

// splitmix64 of (seed, stream): independent generator seeds for e.g. (seed, epoch).
uint64_t mix_seed(uint64_t seed, uint64_t stream = 0);
// Uniform integer in [0, n), n >= 1, by rejection of the biased top of the 2^64 range.
uint64_t uniform_below(std::mt19937_64& rng, uint64_t n);
// Fisher-Yates shuffle in place.
void deterministic_shuffle(std::vector<int64_t>& v, std::mt19937_64& rng);
// 0..n-1 shuffled by rng_seed (or in order when shuffle is false).
std::vector<int64_t> permutation(int64_t n, uint64_t rng_seed, bool shuffle = true);

}  // namespace lorascope
