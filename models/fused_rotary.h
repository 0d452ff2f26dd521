// Rotary position embedding (HF's apply_rotary_pos_emb: x cos + rotate_half(x) sin) as one
// autograd node whose forward and backward are one pass each (CPU, float32 and float64).
//
// The composite form makes five passes forward (mul, neg, cat, mul, add, two of them
// broadcasting (T, hd) over batch and heads) and as many backward, for q and k of every layer.
// Same operations per element in the same order, so the result is the composite form's up to
// the compiler's fused multiply-adds (RotaryTest compares both with float64).
#pragma once

#include <ATen/ATen.h>

namespace lorascope {

// True where fused_rotary runs its kernels: x (B, T, heads, hd) and cos, sin (T, hd) on the CPU,
// all float32 or all float64, hd even, cos and sin not requiring gradients.
bool fused_rotary_applies(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);

// x rotated, (B, T, heads, hd); differentiable in x.
at::Tensor fused_rotary(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);

}  // namespace lorascope
