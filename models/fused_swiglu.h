// LLaMA's gated activation silu(a) * b as one autograd node whose forward and backward are one
// pass each (CPU, float32, where the CPU has AVX-512; elsewhere the composite ATen ops).
//
// The composite form writes silu(a) and reads it back forward, and takes three passes backward
// (two products and silu's backward) over the (tokens, intermediate) tensors, the widest of a
// LLaMA block. exp is a Cephes-style polynomial with AVX-512's scalef (within 2 ulp of expf), so
// the result follows ATen's to float32 rounding (FusedSwigluTest compares both with float64).
#pragma once

#include <ATen/ATen.h>

namespace lorascope {

// True where swiglu runs the fused kernels: a and b same-shape contiguous CPU float32 tensors on
// a CPU with AVX-512.
bool fused_swiglu_applies(const at::Tensor& a, const at::Tensor& b);

// silu(a) * b, differentiable in a and b; the fused node where fused_swiglu_applies, else ATen's ops.
at::Tensor swiglu(const at::Tensor& a, const at::Tensor& b);

}  // namespace lorascope
