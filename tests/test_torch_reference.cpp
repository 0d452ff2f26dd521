// lorascope's AdamW and SGD against LibTorch's own implementations (the only test that needs
// <torch/torch.h>): same parameters, same gradients, 100 steps.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "optim/adamw.h"
#include "optim/sgd.h"

namespace lorascope {
namespace {

at::Tensor grad_of(const at::Tensor& p, int t) { return at::cos(p * (0.3 + 0.01 * t)) + 0.05 * p; }

TEST(TorchReferenceTest, AdamWMatchesTorchOptimAdamWOver100Steps) {
  for (auto dtype : {at::kFloat, at::kDouble}) {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
    auto ours = at::randn({16, 12}, gen, dtype);
    auto theirs = ours.clone().set_requires_grad(true);
    AdamW adamw({ours}, AdamWOptions{1e-2, 0.9, 0.999, 1e-8, 1e-2});
    torch::optim::AdamW ref({theirs}, torch::optim::AdamWOptions(1e-2).weight_decay(1e-2));
    for (int t = 0; t < 100; ++t) {
      ours.mutable_grad() = grad_of(ours, t);
      theirs.mutable_grad() = grad_of(theirs.detach(), t);
      adamw.step();
      ref.step();
    }
    const double rel = ((ours - theirs.detach()).abs().max() / theirs.detach().abs().max()).item<double>();
    EXPECT_LT(rel, 1e-6) << dtype;
  }
}

TEST(TorchReferenceTest, SGDWithNesterovMatchesTorchOptimSGD) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(4);
  auto ours = at::randn({8, 8}, gen, at::kDouble);
  auto theirs = ours.clone().set_requires_grad(true);
  SGD sgd({ours}, SGDOptions{0.05, 0.9, 0.0, true, 1e-3});
  torch::optim::SGD ref({theirs},
                        torch::optim::SGDOptions(0.05).momentum(0.9).nesterov(true).weight_decay(1e-3));
  for (int t = 0; t < 100; ++t) {
    ours.mutable_grad() = grad_of(ours, t);
    theirs.mutable_grad() = grad_of(theirs.detach(), t);
    sgd.step();
    ref.step();
  }
  EXPECT_LT((ours - theirs.detach()).abs().max().item<double>(), 1e-12);
}

}  // namespace
}  // namespace lorascope
