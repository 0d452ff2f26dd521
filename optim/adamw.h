// AdamW (Loshchilov & Hutter), written out with the same arithmetic order as
// torch::optim::AdamW so that the two agree to rounding (a test checks 1e-6 over 100 steps):
//
//   W    <- (1 - lr * wd) W
//   m    <- b1 m + (1 - b1) g,       v <- b2 v + (1 - b2) g^2
//   W    <- W - (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
#pragma once

#include "optim/optimizer.h"

namespace lorascope {

struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 1e-2;
};

class AdamW : public Optimizer {
 public:
  AdamW(std::vector<at::Tensor> params, AdamWOptions options);
  void step() override;
  std::string name() const override { return "adamw"; }

 private:
  AdamWOptions options_;
  std::vector<at::Tensor> exp_avg_, exp_avg_sq_;
};

}  // namespace lorascope
