// bf16 autocast for a scope (the C++ counterpart of `with torch.autocast(device, bfloat16)`):
// matmuls and linear layers run in bf16, reductions and losses stay in float32. Used around the
// forward pass only, as in PyTorch; the cast cache is cleared on exit so that the next step
// never sees weights cast before the optimizer changed them.
#pragma once

#include <ATen/ATen.h>

namespace lorascope {

class AutocastGuard {
 public:
  AutocastGuard(at::DeviceType device, bool enabled);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  at::DeviceType device_;
  bool active_ = false, previous_ = false;
  at::ScalarType previous_dtype_ = at::kFloat;
};

}  // namespace lorascope
