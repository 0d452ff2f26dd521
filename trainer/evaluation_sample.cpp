#include "trainer/evaluation_sample.h"

#include <algorithm>
#include <map>
#include <numeric>
#include <random>
#include <tuple>

namespace lorascope {

std::vector<TokenizedExample> evaluation_sample(const std::vector<TokenizedExample>& data, int64_t n,
                                                uint64_t seed, bool labelled) {
  const auto size = static_cast<int64_t>(data.size());
  if (n <= 0 || n >= size) return data;
  std::mt19937_64 rng(seed ^ 0x65766c5f73616d70ULL);  // a stream of its own ("evl_samp")
  std::map<int64_t, std::vector<size_t>> by_label;
  for (size_t i = 0; i < data.size(); ++i) by_label[labelled ? data[i].label : 0].push_back(i);
  // The k-th of a label's n_L examples sits at (k + 1/2) / n_L: sorting by that interleaves the
  // labels in proportion (stratified prefixes).
  std::vector<std::tuple<double, int64_t, size_t>> keyed;
  for (auto& [label, idx] : by_label) {
    std::shuffle(idx.begin(), idx.end(), rng);
    for (size_t k = 0; k < idx.size(); ++k) {
      keyed.emplace_back((static_cast<double>(k) + 0.5) / static_cast<double>(idx.size()), label, idx[k]);
    }
  }
  std::sort(keyed.begin(), keyed.end());
  std::vector<TokenizedExample> out;
  for (int64_t i = 0; i < n; ++i) out.push_back(data[std::get<2>(keyed[static_cast<size_t>(i)])]);
  return out;
}

}  // namespace lorascope
