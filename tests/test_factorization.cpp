// Analytic factorization gradients (Eigen and ATen paths) against autograd in float64.
#include <gtest/gtest.h>

#include <torch/csrc/autograd/autograd.h>

#include "models/factorization.h"

namespace lorascope {
namespace {

TEST(FactorizationTest, AnalyticGradientsMatchAutograd) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1);
  for (int depth : {2, 3, 4}) {
    auto f = Factorization::random_init(12, 9, 3, depth, 0.7, FactorInit::BZero, gen,
                                        at::TensorOptions().dtype(at::kDouble));
    f.factors().back() = at::randn({3, 9}, gen, at::kDouble);
    auto Y = at::randn({12, 9}, gen, at::kDouble);

    std::vector<at::Tensor> leaves;
    for (const auto& F : f.factors()) leaves.push_back(F.detach().clone().set_requires_grad(true));
    at::Tensor W = leaves[0];
    for (size_t k = 1; k < leaves.size(); ++k) W = at::matmul(W, leaves[k]);
    auto loss = 0.5 * (W - Y).pow(2).sum();
    auto grads = torch::autograd::grad({loss}, leaves);

    const double fast = f.loss_and_grad(Y);
    std::vector<at::Tensor> fast_grads;
    for (const auto& F : f.factors()) fast_grads.push_back(F.grad().clone());
    const double ref = f.loss_and_grad_reference(Y);
    EXPECT_NEAR(fast, loss.item<double>(), 1e-12);
    EXPECT_NEAR(ref, loss.item<double>(), 1e-12);
    for (int k = 0; k < depth; ++k) {
      EXPECT_LT((fast_grads[k] - grads[k]).abs().max().item<double>(), 1e-12) << "L" << depth << " k" << k;
      EXPECT_LT((f.factors()[k].grad() - grads[k]).abs().max().item<double>(), 1e-12);
    }
  }
}

TEST(FactorizationTest, InitConventionsAndShapeChecks) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(2);
  auto opts = at::TensorOptions().dtype(at::kDouble);
  auto a = Factorization::random_init(6, 7, 2, 3, 1e-3, FactorInit::AZero, gen, opts);
  EXPECT_EQ(a.factors()[0].abs().max().item<double>(), 0.0);
  EXPECT_GT(a.factors()[1].abs().max().item<double>(), 0.0);
  EXPECT_EQ(a.factors()[1].sizes(), (std::vector<int64_t>{2, 2}));
  auto b = Factorization::random_init(6, 7, 2, 2, 1e-3, FactorInit::BZero, gen, opts);
  EXPECT_EQ(b.factors()[1].abs().max().item<double>(), 0.0);
  EXPECT_THROW(Factorization({at::zeros({3, 2}), at::zeros({3, 4})}), std::invalid_argument);
  EXPECT_THROW(Factorization({at::zeros({3})}), std::invalid_argument);
  EXPECT_THROW(parse_factor_init("spectral"), std::invalid_argument);
}

}  // namespace
}  // namespace lorascope
