// The "legacy" AdamW of transformers (transformers.AdamW, removed in v5) in the form PEFT's
// LoraFAOptimizer and the Riemannian-preconditioned-LoRA authors' code (scaled AdamW) keep it.
// It differs from torch.optim.AdamW (adamw.h) in where eps sits and when the decay applies:
//
//   m <- b1 m + (1 - b1) g,   v <- b2 v + (1 - b2) g^2
//   step = correct_bias ? lr sqrt(1 - b2^t) / (1 - b1^t) : lr
//   W    <- W - step * m / (sqrt(v) + eps)          (eps added before the bias correction)
//   W    <- W - lr wd W                            (decay after the update, on the new W)
//
// Only here so that lorascope can reproduce those optimizers step for step (tests/interop).
#pragma once

#include "optim/optimizer.h"

namespace lorascope {

struct AdamWHFOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-6;  // PEFT's LoraFAOptimizer default
  double weight_decay = 0.0;
  bool correct_bias = true;
};

class AdamWHF : public Optimizer {
 public:
  AdamWHF(std::vector<at::Tensor> params, AdamWHFOptions options);
  void step() override;
  std::string name() const override { return "adamw_hf"; }

 private:
  AdamWHFOptions options_;
  std::vector<at::Tensor> exp_avg_, exp_avg_sq_;
};

}  // namespace lorascope
