#include "models/lora_init.h"

#include <ATen/core/grad_mode.h>  // at::NoGradGuard (not in <ATen/ATen.h> from LibTorch 2 on)
#include <cmath>
#include <stdexcept>
#include <string>

namespace lorascope {

namespace {

[[noreturn]] void fail(const std::string& method, const std::string& what) {
  throw std::invalid_argument(method + ": " + what);
}

void check_common(const std::string& method, const at::Tensor& W, int64_t r, double scaling, int64_t factor) {
  if (W.dim() != 2) fail(method, "expected a 2-D base weight, got shape " + c10::str(W.sizes()));
  const int64_t k = std::min(W.size(0), W.size(1));
  if (r < 1 || factor * r > k) {
    fail(method, "rank r = " + std::to_string(r) + " must be in [1, " + std::to_string(k / factor) + "] for a " +
                     std::to_string(W.size(0)) + " x " + std::to_string(W.size(1)) + " weight");
  }
  if (!(scaling > 0) || !std::isfinite(scaling)) fail(method, "scaling must be a finite number > 0");
}

void check_gradient(const std::string& method, const at::Tensor& W, const at::Tensor& G) {
  if (!G.sizes().equals(W.sizes())) {
    fail(method, "gradient shape " + c10::str(G.sizes()) + " differs from the weight's " + c10::str(W.sizes()));
  }
  if (!at::isfinite(G).all().item<bool>()) fail(method, "the gradient has NaN or Inf entries");
}

// Rounds A and B to W's dtype; corrects the base with the rounded factors when asked.
LoraInitFactors finish(const at::Tensor& W, const at::Tensor& A64, const at::Tensor& B64, double scaling, bool correct) {
  LoraInitFactors out;
  out.A = A64.to(W.options()).contiguous();
  out.B = B64.to(W.options()).contiguous();
  if (correct) {
    const auto offset = scaling * at::matmul(out.B.to(at::kDouble), out.A.to(at::kDouble));  // (out, in)
    out.W = (W.to(at::kDouble) - offset).to(W.scalar_type());
  } else {
    out.W = W.clone();
  }
  return out;
}

}  // namespace

LoraInitFactors lora_ga_init(const at::Tensor& W, const at::Tensor& G, int64_t r, double scaling, const LoraGaOptions& options) {
  check_common("lora_ga", W, r, scaling, 2);
  check_gradient("lora_ga", W, G);
  if (!(options.stable_gamma > 0)) fail("lora_ga", "stable_gamma must be > 0");
  at::NoGradGuard no_grad;
  auto [U, S, Vh] = at::linalg_svd(G.detach().to(at::kCPU, at::kDouble), /*full_matrices=*/false);
  const double c = std::pow(static_cast<double>(W.size(0)), 0.25) / std::sqrt(options.stable_gamma);
  auto A = Vh.narrow(0, 0, r);     // (r, in): right singular vectors 1..r
  auto B = U.narrow(1, r, r);      // (out, r): left singular vectors r+1..2r
  if (options.flavor == LoraGaFlavor::Paper) {
    A = A * c;
    B = B * c;
  } else {  // PEFT: singular values r+1..2r in B, only B scaled
    B = B * S.narrow(0, r, r).unsqueeze(0) * c;
  }
  return finish(W, A, B, scaling, /*correct=*/true);
}

LoraInitFactors lora_one_init(const at::Tensor& W, const at::Tensor& G, int64_t r, double scaling, const LoraOneOptions& options) {
  check_common("lora_one", W, r, scaling, 1);
  check_gradient("lora_one", W, G);
  if (!(options.gamma > 0)) fail("lora_one", "gamma must be > 0");
  at::NoGradGuard no_grad;
  auto [U, S, Vh] = at::linalg_svd(-G.detach().to(at::kCPU, at::kDouble), /*full_matrices=*/false);
  const double sigma1 = S[0].item<double>();
  if (!(sigma1 > 0)) fail("lora_one", "the gradient is zero: no direction to initialise from");
  auto root = (S.narrow(0, 0, r) / (sigma1 * options.gamma)).sqrt();  // (r)
  auto B = U.narrow(1, 0, r) * root.unsqueeze(0);                      // (out, r)
  auto A = root.unsqueeze(1) * Vh.narrow(0, 0, r);                     // (r, in)
  return finish(W, A, B, scaling, /*correct=*/false);
}

LoraInitFactors olora_init(const at::Tensor& W, int64_t r, double scaling) {
  check_common("olora", W, r, scaling, 1);
  at::NoGradGuard no_grad;
  auto [Q, R] = at::linalg_qr(W.detach().to(at::kCPU, at::kDouble));  // reduced: (out, k), (k, in)
  return finish(W, R.narrow(0, 0, r), Q.narrow(1, 0, r), scaling, /*correct=*/true);
}

}  // namespace lorascope
