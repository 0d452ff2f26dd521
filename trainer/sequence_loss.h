// The training loss of the transformer recipes, shared by the trainer, the interop driver and the
// golden tests so that what they check is what trains.
//
//   classification: cross entropy summed over the rows;                   count = rows
//   LM / SFT:       cross entropy summed over the targets != -100;         count = those targets
//
// A step's loss is loss_sum over all its micro-batches (and ranks) divided by the count over all
// of them: the mean over the step's targets, as one big batch would give it (not the mean of the
// micro-batches' means, which weighs a target of a short batch more).
#pragma once

#include <ATen/ATen.h>

namespace lorascope {

// logits: (B, num_labels) with labels (B), or (B, T, V) with labels (B, T); computed in float32.
at::Tensor loss_sum(const at::Tensor& logits, const at::Tensor& labels, bool classification);
// The denominator of a batch's mean loss (rows or targets), read on the host.
double loss_count(const at::Tensor& labels, bool classification);
// loss_sum / max(count, 1), without a host round trip: a batch with no target has loss 0, not NaN.
at::Tensor mean_loss(const at::Tensor& logits, const at::Tensor& labels, bool classification);

}  // namespace lorascope
