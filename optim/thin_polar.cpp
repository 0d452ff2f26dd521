#include "optim/thin_polar.h"

#include <algorithm>
#include <limits>

#include "optim/orthogonalize.h"

namespace lorascope {

double thin_polar_tolerance(int64_t rows, int64_t cols, at::ScalarType dtype) {
  const double sv_tol = zero_sv_tolerance(rows, cols, dtype);
  const double gram_tol = static_cast<double>(std::max(rows, cols)) * std::numeric_limits<double>::epsilon();
  return std::max(sv_tol * sv_tol, gram_tol);
}

at::Tensor orthogonalize_thin(const at::Tensor& G) {
  TORCH_CHECK(G.dim() >= 2, "orthogonalize_thin: expected a matrix or a batch of matrices");
  if (G.numel() == 0) return G.clone();
  const bool tall = G.size(-2) > G.size(-1);
  auto X = (tall ? G.transpose(-2, -1) : G).to(at::kDouble);  // (..., r, n), r <= n
  const double tol = thin_polar_tolerance(G.size(-2), G.size(-1), G.scalar_type());
  auto gram = at::matmul(X, X.transpose(-2, -1));               // (..., r, r)
  auto [lambda, Q] = at::linalg_eigh(gram);                      // ascending
  auto lambda_max = lambda.narrow(-1, lambda.size(-1) - 1, 1);  // (..., 1)
  auto keep = (lambda > lambda_max * tol) & (lambda > 0);
  auto weight = at::where(keep, lambda.clamp_min(std::numeric_limits<double>::min()).rsqrt(),
                          at::zeros_like(lambda));
  auto inv_sqrt = at::matmul(Q * weight.unsqueeze(-2), Q.transpose(-2, -1));  // (..., r, r)
  auto out = at::matmul(inv_sqrt, X);                                          // (..., r, n)
  if (tall) out = out.transpose(-2, -1);
  return out.to(G.scalar_type()).contiguous();
}

}  // namespace lorascope
