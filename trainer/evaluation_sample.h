// The held-out examples evaluated during training (train.eval_batches > 0): a fixed sample drawn
// once from the validation split with the run's seed, stratified by label for classification, so
// that every evaluation sees the same examples and the classes in their split's proportions. (The
// first batches of a split in dataset order can hold a single class: 0.98 "accuracy" during
// training against 0.755 at the end, issue 15.)
#pragma once

#include <cstdint>
#include <vector>

#include "data/batching.h"

namespace lorascope {

// n examples of data (all of them when n <= 0 or n >= data.size()). Labelled (classification):
// each label's examples in a seeded random order, interleaved so that every prefix of the result
// holds each label in proportion to its count (to within one example). Unlabelled: a seeded
// random subset. The examples keep their order of selection.
std::vector<TokenizedExample> evaluation_sample(const std::vector<TokenizedExample>& data, int64_t n,
                                                uint64_t seed, bool labelled);

}  // namespace lorascope
