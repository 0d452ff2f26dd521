#include "optim/lora_alternating_gd.h"

#include <stdexcept>

namespace lorascope {

void alternating_gd_iteration(at::Tensor& B, at::Tensor& A, const FactorGrad& grad_B,
                              const FactorGrad& grad_A, const AlternatingGdOptions& o) {
  if (o.k < 1 || !(o.lambda >= 0 && o.lambda <= 1) || !(o.alpha > 0)) {
    throw std::invalid_argument("alternating gd: expected k >= 1, lambda in [0, 1], alpha > 0");
  }
  const at::Tensor B_old = B, A_fixed = A;
  at::Tensor B_new = B;
  for (int64_t j = 0; j < o.k; ++j) B_new = B_new - grad_B(B_new, A_fixed) * o.alpha;
  const at::Tensor B_star = o.lambda == 1.0   ? B_old
                            : o.lambda == 0.0 ? B_new
                                              : B_old * o.lambda + B_new * (1 - o.lambda);
  at::Tensor A_new = A;
  for (int64_t j = 0; j < o.k; ++j) A_new = A_new - grad_A(B_star, A_new) * o.alpha;
  B = B_new;
  A = A_new;
}

}  // namespace lorascope
