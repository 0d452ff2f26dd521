#include "optim/polar_express.h"

#include <cmath>
#include <stdexcept>
#include <string>

namespace lorascope {

const std::vector<QuinticCoefficients>& polar_express_raw_coefficients() {
  // NoahAmsel/PolarExpress polar_express/basic.py (_COEFFS before the safety factor).
  static const std::vector<QuinticCoefficients> raw = {
      {8.28721201814563, -23.595886519098837, 17.300387312530933},
      {4.107059111542203, -2.9478499167379106, 0.5448431082926601},
      {3.9486908534822946, -2.908902115962949, 0.5518191394370137},
      {3.3184196573706015, -2.488488024314874, 0.51004894012372},
      {2.300652019954817, -1.6689039845747493, 0.4188073119525673},
      {1.891301407787398, -1.2679958271945868, 0.37680408948524835},
      {1.8750014808534479, -1.2500016453999487, 0.3750001645474248},
      {1.875, -1.25, 0.375},
  };
  return raw;
}

std::vector<QuinticCoefficients> polar_express_coefficients(int steps) {
  if (steps < 0) throw std::invalid_argument("polar_express: steps must be >= 0, got " + std::to_string(steps));
  const auto& raw = polar_express_raw_coefficients();
  const double s = 1.01;  // the safety factor: p(x / s), every polynomial but the last
  std::vector<QuinticCoefficients> out;
  for (int t = 0; t < steps; ++t) {
    const size_t i = std::min(static_cast<size_t>(t), raw.size() - 1);
    const auto& [a, b, c] = raw[i];
    if (i + 1 < raw.size()) {
      out.push_back({a / s, b / (s * s * s), c / std::pow(s, 5)});
    } else {
      out.push_back(raw[i]);
    }
  }
  return out;
}

at::Tensor polar_express(const at::Tensor& G, int steps, std::optional<at::ScalarType> compute_dtype) {
  TORCH_CHECK(G.dim() >= 2, "polar_express: expected a matrix or a batch of matrices");
  const auto coefficients = polar_express_coefficients(steps);
  const auto dtype = compute_dtype.value_or(G.is_cuda() ? at::kBFloat16 : G.scalar_type());
  const bool tall = G.size(-2) > G.size(-1);
  auto X = G.reshape({-1, G.size(-2), G.size(-1)});  // (k, rows, cols)
  if (tall) X = X.transpose(-2, -1);                  // (k, r, n), r <= n: the Gram side is small
  X = X.to(dtype);
  X = X / (at::linalg_vector_norm(X, 2, {-2, -1}, /*keepdim=*/true) * 1.01 + 1e-7);
  for (const auto& [a, b, c] : coefficients) {
    auto A = at::bmm(X, X.transpose(-2, -1));                   // X X^T      (k, r, r)
    auto B = at::baddbmm(A, A, A, /*beta=*/b, /*alpha=*/c);     // b A + c A^2
    X = at::baddbmm(X, B, X, /*beta=*/a, /*alpha=*/1.0);        // a X + B X
  }
  if (tall) X = X.transpose(-2, -1);
  return X.to(G.scalar_type()).reshape(G.sizes()).contiguous();
}

}  // namespace lorascope
