// split_dataset (declared in text_datasets.h).
#include <algorithm>
#include <cmath>
#include <map>
#include <stdexcept>
#include <string>

#include "data/shuffle.h"
#include "data/text_datasets.h"

namespace lorascope {

namespace {

// Splits total over groups in proportion to their sizes: floors first, then one more to the
// groups with the largest remainders (ties: the earlier group), never more than cap[g].
std::vector<int64_t> allocate(const std::vector<int64_t>& sizes, const std::vector<int64_t>& cap,
                              double fraction, int64_t total) {
  std::vector<int64_t> count(sizes.size());
  std::vector<std::pair<double, size_t>> rest;
  int64_t given = 0;
  for (size_t g = 0; g < sizes.size(); ++g) {
    const double exact = fraction * static_cast<double>(sizes[g]);
    count[g] = std::min(static_cast<int64_t>(std::floor(exact)), cap[g]);
    given += count[g];
    rest.emplace_back(exact - std::floor(exact), g);
  }
  std::stable_sort(rest.begin(), rest.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  for (const auto& [remainder, g] : rest) {
    if (given >= total) break;
    if (count[g] < cap[g]) ++count[g], ++given;
  }
  return count;
}

TextDataset subset(const TextDataset& data, std::vector<int64_t> idx) {
  std::sort(idx.begin(), idx.end());  // a split keeps the dataset's order
  TextDataset out{data.kind, {}, data.label_names};
  out.examples.reserve(idx.size());
  for (int64_t i : idx) out.examples.push_back(data.examples[static_cast<size_t>(i)]);
  return out;
}

}  // namespace

DatasetSplits split_dataset(const TextDataset& data, double validation_fraction,
                            double test_fraction, uint64_t seed) {
  if (!(validation_fraction >= 0) || !(test_fraction >= 0) ||
      !(validation_fraction + test_fraction <= 1)) {
    throw std::invalid_argument(
        "split_dataset: expected validation and test fractions >= 0 with a sum <= 1, got " +
        std::to_string(validation_fraction) + " and " + std::to_string(test_fraction));
  }
  // One stratum per label (all examples share label -1 when unlabelled), in label order.
  std::map<int64_t, std::vector<int64_t>> strata;
  for (size_t i = 0; i < data.examples.size(); ++i) {
    strata[data.examples[i].label].push_back(static_cast<int64_t>(i));
  }
  std::mt19937_64 rng(mix_seed(seed));
  std::vector<int64_t> sizes, unbounded;
  for (auto& [label, idx] : strata) {
    deterministic_shuffle(idx, rng);
    sizes.push_back(static_cast<int64_t>(idx.size()));
    unbounded.push_back(static_cast<int64_t>(idx.size()));
  }
  const auto n = static_cast<double>(data.examples.size());
  const auto n_test = allocate(sizes, unbounded, test_fraction, std::llround(test_fraction * n));
  std::vector<int64_t> room(sizes.size());
  for (size_t g = 0; g < sizes.size(); ++g) room[g] = sizes[g] - n_test[g];
  const auto n_val =
      allocate(sizes, room, validation_fraction, std::llround(validation_fraction * n));

  std::vector<int64_t> train, validation, test;
  size_t g = 0;
  for (const auto& [label, idx] : strata) {
    const auto t = idx.begin() + n_test[g], v = t + n_val[g];
    test.insert(test.end(), idx.begin(), t);
    validation.insert(validation.end(), t, v);
    train.insert(train.end(), v, idx.end());
    ++g;
  }
  return {subset(data, train), subset(data, validation), subset(data, test)};
}

}  // namespace lorascope
