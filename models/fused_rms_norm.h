// RMSNorm over the last dimension, y = w * x / sqrt(mean(x^2) + eps), as one autograd node whose
// forward and backward are one pass each over x (CPU, float32 and float64).
//
// The composite form (pow, mean, add, rsqrt, mul, mul and their backward nodes) makes about
// sixteen passes over a (tokens, C) tensor, several of them broadcasting a (tokens, 1) factor,
// which ATen's CPU kernels run slowly: in the small LLaMA's LoRA step the nine norms cost about
// as much as all its attention. Rows are reduced in float64, so the result is the composite
// form's to float32 rounding (RMSNormTest compares both with a float64 reference).
#pragma once

#include <ATen/ATen.h>

namespace lorascope {

// True where fused_rms_norm runs its kernels: x and w on the CPU, both float32 or both float64,
// w one-dimensional with x's last size.
bool fused_rms_norm_applies(const at::Tensor& x, const at::Tensor& weight);

// The normalised x times weight, differentiable in x and weight.
at::Tensor fused_rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps);

}  // namespace lorascope
