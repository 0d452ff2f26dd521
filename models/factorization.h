// A product of trainable factors W = F_0 F_1 ... F_{L-1} fitted to a target Y with the loss
//   L = 1/2 ||W - Y||_F^2        (sum, not mean: muon-lora-uniform-growth.md eq. (3))
// L = 2 is LoRA's W = A B (A = F_0: m x r, B = F_1: r x n); L > 2 is the deep factorization of
// Appendix E.1 (W_L ... W_1 with W_L = F_0 first, inner factors r x r).
//
// Gradients are analytic, dL/dF_k = (F_0..F_{k-1})^T E (F_{k+1}..F_{L-1})^T with E = W - Y, and
// are written into each factor's .grad() so that any optimizer in optim/ can step them.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

namespace lorascope {

enum class FactorInit {
  AZero,  // F_0 = 0, the others gamma * N(0, 1): the paper's convention (A(0) = 0, B(0) random)
  BZero,  // F_{L-1} = 0, the others gamma * N(0, 1): PEFT's convention (lora_B = 0)
};
FactorInit parse_factor_init(const std::string& name);

class Factorization {
 public:
  // Checks that the chain is conformable and all factors share dtype and device.
  explicit Factorization(std::vector<at::Tensor> factors);

  static Factorization random_init(int64_t m, int64_t n, int64_t r, int depth, double gamma,
                                   FactorInit init, at::Generator& gen,
                                   const at::TensorOptions& options);

  at::Tensor product() const;  // (m, n)
  double loss(const at::Tensor& Y) const;
  // Returns the loss at the current factors and fills every factor's .grad().
  double loss_and_grad(const at::Tensor& Y);
  // The same through ATen ops only: the reference for the Eigen path, and the path for
  // CUDA or large matrices.
  double loss_and_grad_reference(const at::Tensor& Y);

  std::vector<at::Tensor>& factors() { return factors_; }
  const std::vector<at::Tensor>& factors() const { return factors_; }
  int depth() const { return static_cast<int>(factors_.size()); }
  int64_t rows() const { return factors_.front().size(0); }
  int64_t cols() const { return factors_.back().size(1); }

 private:
  std::vector<at::Tensor> factors_;
  bool small_cpu_ = false;  // all factors contiguous CPU float64: Eigen path
  std::vector<double> residual_;  // (m, n) E = W - Y of the Eigen path, reused every step
};

}  // namespace lorascope
