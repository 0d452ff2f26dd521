// Riemannian preconditioned LoRA (Zhang & Pilanci 2024, "Riemannian Preconditioned LoRA for
// Fine-Tuning Foundation Models", arXiv 2402.02347, eq. (5) / Algorithms 1-2): for an adapter
// y = W x + s B A x with A (r, in), B (out, r), each factor's gradient is preconditioned by the
// other factor's r x r Gram matrix before the base optimizer sees it,
//
//   grad_A <- (B^T B + delta I)^(-1) grad_A          (r, r) (r, in)
//   grad_B <- grad_B (A A^T + delta I)^(-1)          (out, r) (r, r)
//
// the scaled gradient of the quotient geometry of rank-r matrices (Mishra et al.). Both
// preconditioners come from the factors at the start of the step ("simultaneous", as the paper's
// update and PEFT's create_riemannian_optimizer do; the authors' AdamWr reads A after its update
// through a tensor alias when it preconditions B, which we do not copy).
//
// Where it goes with AdamW: on the gradient, before the moments: m and v accumulate the
// preconditioned gradients and AdamW runs unchanged ("scaled AdamW": the authors' AdamWr and
// PEFT's optimizer both precondition p.grad and then take the plain AdamW step). With SGD the
// step is W <- W - lr P(grad) (plus the base optimizer's momentum and decay, if any).
//
// The inverse is a pseudo-inverse of the symmetric PSD r x r matrix in float64 (eigenvalues
// <= r eps64 lambda_max count as zero), as PEFT's torch.linalg.pinv: with delta > 0 it is the
// inverse; with delta = 0 and B = 0 (PEFT's zero init) grad_A is mapped to 0, not to infinity.
// delta: PEFT's default 1e-2 (the authors' code uses 1e-6). The paper ignores s; so does this
// unless divide_by_scaling_squared (s^2 makes it the exact Riemannian gradient of s B A).
//
// LoRA-FA as PEFT 0.21 implements it (peft/optimizers/lorafa.py; Zhang et al. 2023, arXiv
// 2308.03303): A frozen, grad_B <- (1 / s^2) grad_B (A A^T + 1e-8 I)^(-1), then transformers'
// legacy AdamW (adamw_hf.h): lora_fa_options() below with AdamWHF as the base optimizer.
#pragma once

#include <memory>
#include <vector>

#include "optim/optimizer.h"

namespace lorascope {

// One adapter's factors as optim/ sees them (it knows no models).
struct LoraPair {
  at::Tensor A;  // (r, in)
  at::Tensor B;  // (out, r)
  double scaling = 1.0;
};

// (B^T B + delta I)^+ grad_A and grad_B (A A^T + delta I)^+, computed in float64, returned in the
// gradient's dtype.
at::Tensor precondition_grad_A(const at::Tensor& grad_A, const at::Tensor& B, double delta);
at::Tensor precondition_grad_B(const at::Tensor& grad_B, const at::Tensor& A, double delta);

struct RiemannianOptions {
  double delta = 1e-2;
  bool precondition_A = true;
  bool precondition_B = true;
  bool divide_by_scaling_squared = false;
};
RiemannianOptions lora_fa_options();  // B only, delta 1e-8, divided by s^2

// Wraps a base optimizer whose parameters include every factor to precondition. step():
// preconditioned gradients for all pairs (from the current factors), base step, then the
// original gradients are put back (so gradient logging after the step sees what backward gave).
class RiemannianLora : public Optimizer {
 public:
  RiemannianLora(std::vector<LoraPair> pairs, RiemannianOptions options, std::unique_ptr<Optimizer> base);
  void step() override;
  std::string name() const override { return "riemannian_" + base_->name(); }
  void set_lr_factor(double factor) override;
  TensorDict state_dict() const override { return base_->state_dict(); }
  void load_state_dict(const TensorDict& state) override;
  Optimizer& base() { return *base_; }

 private:
  std::vector<LoraPair> pairs_;
  RiemannianOptions options_;
  std::unique_ptr<Optimizer> base_;
};

}  // namespace lorascope
