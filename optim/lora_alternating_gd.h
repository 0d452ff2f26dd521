// Algorithm 1 of lora-rank-accuracy-gradient-flow.md: gradient descent on a LoRA pair (B, A)
// with k inner steps per factor and a mixing parameter lambda in [0, 1]. One outer iteration i,
// written from the update equations (4)-(5) (the pseudocode's indices are off: its Stage 2 loop
// runs j = 1..k into A_{k+1}, and line 10 mixes the previous B* rather than B_{ik}):
//
//   B_{ik+j+1} = B_{ik+j} - alpha grad_B g(B_{ik+j}, A_{ik})                   j = 0..k-1
//   B*         = lambda B_{ik} + (1 - lambda) B_{(i+1)k}
//   A_{ik+j+1} = A_{ik+j} - alpha grad_A g(B*, A_{ik+j})                       j = 0..k-1
//
// lambda = 1 updates both factors from the previous iterate (simultaneous, as LoRA does in
// practice), lambda = 0 updates A with the new B (sequential). One iteration advances the flow
// time by k alpha (Theorem 2.4: the interpolated iterates converge to the gradient flow as
// alpha -> 0, with an O(alpha) gap).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <functional>

namespace lorascope {

struct AlternatingGdOptions {
  double alpha = 1e-2;
  double lambda = 1.0;
  int64_t k = 1;
};

// Gradient of g w.r.t. one factor at (B, A).
using FactorGrad = std::function<at::Tensor(const at::Tensor& B, const at::Tensor& A)>;

// One outer iteration, in place on B and A.
void alternating_gd_iteration(at::Tensor& B, at::Tensor& A, const FactorGrad& grad_B,
                              const FactorGrad& grad_A, const AlternatingGdOptions& options);

}  // namespace lorascope
