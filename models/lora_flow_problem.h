// The two fine-tuning objectives of lora-rank-accuracy-gradient-flow.md, on the product
// W = B A of a LoRA pair (B: n x r, A: r x m) and on a full-rank reference U (n x m):
//
//   trace_squared  f(W) = 1/2 Tr^2(W0 - W)   grad f = -Tr(W0 - W) I     (eq. 17-18; needs m = n)
//   frobenius      f(W) = 1/2 ||W0 - W||_F^2 grad f = -(W0 - W)          (eq. 36)
//
// LoRA gradients by the chain rule: grad_B g = grad f(BA) A^T, grad_A g = B^T grad f(BA)
// (eq. 265-266, 613-614). Everything is float64.
//
// Initialisations (Y = B, X = A in the paper's flow notation), both with B0 = 0:
//   gaussian  A0_ij ~ N(0, sigma^2)                                        (eq. 22)
//   spectral  A0 = diag(x0) V_r^T, x0_i ~ N(0, sigma^2), V_r the top-r right singular
//             vectors of W0, so that A V = diag(x0) padded with zeros       (eq. 42, 45)
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <utility>

namespace lorascope {

enum class LoraLoss { TraceSquared, Frobenius };
LoraLoss parse_lora_loss(const std::string& name);  // trace_squared | frobenius
enum class LoraInit { Gaussian, Spectral };
LoraInit parse_lora_init(const std::string& name);  // gaussian | spectral

class LoraFlowProblem {
 public:
  // W0: (n, m), float64; trace_squared requires n == m (std::invalid_argument).
  LoraFlowProblem(at::Tensor W0, LoraLoss loss);

  double loss(const at::Tensor& W) const;                       // f(W)
  at::Tensor grad(const at::Tensor& W) const;                   // grad f(W): (n, m)
  double lora_loss(const at::Tensor& B, const at::Tensor& A) const { return loss(at::matmul(B, A)); }
  // (grad_B g, grad_A g) at (B, A): (n, r), (r, m).
  std::pair<at::Tensor, at::Tensor> lora_grads(const at::Tensor& B, const at::Tensor& A) const;

  // (B0, A0) for rank r; draws from gen.
  std::pair<at::Tensor, at::Tensor> init(int64_t r, LoraInit init, double sigma,
                                         at::Generator& gen) const;

  const at::Tensor& W0() const { return W0_; }
  LoraLoss kind() const { return loss_; }
  int64_t n() const { return W0_.size(0); }
  int64_t m() const { return W0_.size(1); }

 private:
  at::Tensor W0_;
  LoraLoss loss_;
};

}  // namespace lorascope
