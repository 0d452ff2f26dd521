// Gradient descent / SGD with momentum, with torch.optim.SGD's conventions:
//   g <- g + wd W (coupled L2);  buf <- mu buf + (1 - dampening) g  (buf = g at the first step);
//   d = nesterov ? g + mu buf : buf;  W <- W - lr d.
// momentum = 0 is plain GD, the paper's baseline ("GF" in continuous time).
#pragma once

#include "optim/optimizer.h"

namespace lorascope {

struct SGDOptions {
  double lr = 1e-2;
  double momentum = 0.0;
  double dampening = 0.0;
  bool nesterov = false;
  double weight_decay = 0.0;
};

class SGD : public Optimizer {
 public:
  SGD(std::vector<at::Tensor> params, SGDOptions options);
  void step() override;
  std::string name() const override { return options_.momentum == 0.0 ? "gd" : "sgd"; }

 private:
  SGDOptions options_;
  std::vector<at::Tensor> momentum_;
};

}  // namespace lorascope
