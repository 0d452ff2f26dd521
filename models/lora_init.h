// Data-driven LoRA initializations, as functions of a base weight W (out, in) and, for the
// gradient-based ones, the full-weight gradient G = dL/dW (out, in) averaged over the first
// batches (the caller computes it; nothing here knows the trainer). Convention as models/lora.h:
// y = W x + s B A x, A (r, in), B (out, r), s the adapter's scaling. Every SVD and QR is exact,
// in float64 (the reference codes use torch.svd_lowrank, a randomized approximation of the same
// factors). A and B are returned rounded to W's dtype, and where the method corrects the base,
// W' = W - s B A is formed in float64 from those rounded factors, so the model's output is
// unchanged up to one rounding of W.
//
//   lora_ga   LoRA-GA (Wang, Yu, Li 2024, arXiv 2407.05000, Sec. 3.2-3.3), the authors' default
//             "ArB2r" + "stable": with G = U S V^T,
//               A = c V[:, 1..r]^T,  B = c U[:, r+1..2r],  c = out^(1/4) / sqrt(gamma), gamma = 16
//             and W' = W - s B A (output unchanged). Then one gradient step on both factors moves
//             s B A by -lr s^2 c^2 (G A^T A / c^2 + B B^T G / c^2) = -lr s^2 c^2 G_2r to first order:
//             the best rank-2r approximation of the full step (their Theorem 3.1).
//             flavor Peft: PEFT 0.21's lora_ga_init, which differs: B = c U[:, r+1..2r]
//             diag(S[r+1..2r]) (singular values in B) and A = V[:, 1..r]^T unscaled.
//   lora_one  LoRA-One (Zhang, Liu, Chen 2025, arXiv 2502.01235, Algorithm 1; the authors' code
//             kyoonji/LoRA_initialization run_exp.py): with -G = U S V^T,
//               B = U_r S_r^(1/2) / sqrt(sigma_1 gamma),  A = S_r^(1/2) V_r^T / sqrt(sigma_1 gamma)
//             so s B A = (s / (gamma sigma_1)) (-G)_r: one normalised full-gradient step projected
//             to rank r. The base is NOT corrected (the method starts from that step: the output
//             changes at init). gamma: the authors' default 16.
//   olora     OLoRA (Buyukakyuz 2024, arXiv 2406.01775): W = Q R (thin QR), B = Q[:, 1..r],
//             A = R[1..r, :], W' = W - s B A (output unchanged), as PEFT's olora_init. span(B) =
//             span of W's first r columns.
// PiSSA ("spectral", W's top-r SVD) is LoraConfig::init = "spectral" in models/lora.cpp.
#pragma once

#include <ATen/ATen.h>

namespace lorascope {

struct LoraInitFactors {
  at::Tensor A;  // (r, in)
  at::Tensor B;  // (out, r)
  at::Tensor W;  // the base weight to use with them: W' for lora_ga / olora, W itself for lora_one
};

enum class LoraGaFlavor { Paper, Peft };
struct LoraGaOptions {
  double stable_gamma = 16;
  LoraGaFlavor flavor = LoraGaFlavor::Paper;
};
struct LoraOneOptions {
  double gamma = 16;
};

// Throw std::invalid_argument naming what is wrong (shapes, r, gamma, a zero gradient).
LoraInitFactors lora_ga_init(const at::Tensor& W, const at::Tensor& G, int64_t r, double scaling,
                      const LoraGaOptions& options = {});
LoraInitFactors lora_one_init(const at::Tensor& W, const at::Tensor& G, int64_t r, double scaling,
                       const LoraOneOptions& options = {});
LoraInitFactors olora_init(const at::Tensor& W, int64_t r, double scaling);

}  // namespace lorascope
