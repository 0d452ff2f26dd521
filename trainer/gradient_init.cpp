#include "trainer/gradient_init.h"

#include <ATen/core/grad_mode.h>

#include <algorithm>
#include <cstdio>
#include <map>

#include "models/linear.h"
#include "trainer/sequence_loss.h"

namespace lorascope {

void initialize_adapters_from_gradient(Session& s) {
  const auto& c = s.cfg;
  const auto layers = linear_layers_by_name(*s.model);
  // Only the adapted weights take gradients here; every flag is restored afterwards.
  std::vector<std::pair<at::Tensor, bool>> flags;
  for (const auto& p : s.model->parameters(true)) flags.emplace_back(p, p.requires_grad());
  for (auto& [p, was] : flags) p.requires_grad_(false);
  std::map<std::string, at::Tensor> weights;
  for (const auto& [name, lin] : layers) {
    if (!lin->has_adapter()) continue;
    lin->weight.requires_grad_(true);
    weights[name] = lin->weight;
  }
  const auto all = epoch_batches(s, s.train, 0, /*shuffle=*/true);
  const auto n = std::min<int64_t>(c.init_batches, static_cast<int64_t>(all.size()));
  if (n < c.init_batches) {
    std::fprintf(stderr, "%s: lora.init_batches: an epoch has %lld micro-batches; the %s init reads all of them\n",
                 c.name.c_str(), static_cast<long long>(all.size()), c.lora.init.c_str());
  }
  double count = 0;  // the mean over all targets of the n batches, as one step of grad_accum n
  for (int64_t i = 0; i < n; ++i) count += loss_count(all[static_cast<size_t>(i)].labels, s.classification);
  count = std::max(count, 1.0);
  s.model->eval();
  for (int64_t i = 0; i < n; ++i) {
    const Batch& b = all[static_cast<size_t>(i)];
    const auto logits = forward_batch(s, b);
    (loss_sum(logits, b.labels.to(logits.device()), s.classification) / count).backward();
  }
  s.model->train();
  std::map<std::string, at::Tensor> gradients;
  for (auto& [name, w] : weights) {
    gradients[name] = w.grad().defined() ? w.grad().detach().clone() : at::zeros_like(w.detach());
    w.mutable_grad() = at::Tensor();
  }
  for (auto& [p, was] : flags) p.requires_grad_(was);
  apply_gradient_lora_init(*s.model, s.lora, gradients);
}

}  // namespace lorascope
