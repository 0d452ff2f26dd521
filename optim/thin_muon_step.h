// Muon's step on one thin CPU matrix (a LoRA factor, r x n with n >= 4r) with Newton-Schulz,
// fused so that the long side is read and written as few times as the arithmetic needs, with
// no ATen call per factor (each costs microseconds, and an all-linear LLaMA-1B step has 224
// factors). For float32 factors of rank 8, 16 or 32 (thin_factor_kernels.h):
//
//   M <- G + mu M, D = nesterov ? G + mu M : M,      one pass over the long side
//   and the Gram matrix D D^T in float64
//   Q with NS(D) = Q D from the Gram matrix         r x r work in float64 (gram_newton_schulz.h)
//   W <- (1 - lr wd) W - lr scale(W) Q D             one pass
//
// That is the least memory traffic the update allows (read G, M, W; write M, W); on one core of
// the project's VM the all-linear LLaMA-1B step takes within 2x of that traffic's streaming time,
// the Gram kernel's multiply-adds being the rest (BENCHMARKS.md). Other thin factors take the
// separate form (muon_direction + mul_ + add_), whose orthogonalize() runs the Gram form
// (gram_newton_schulz.h). D lives in a per-thread buffer kept between steps. Same update as the
// separate form up to rounding (MuonTest, ThinFactorKernelsTest).
#pragma once

#include <ATen/ATen.h>

#include "optim/muon.h"

namespace lorascope {

// True when p (with its gradient) can take the fused step: Newton-Schulz on a float32 matrix the
// Gram form applies to (gram_newton_schulz_applies) whose short side the kernels are built for.
bool thin_muon_step_applies(const at::Tensor& p, const MuonOptions& options);

// One Muon step on p in place; momentum_buffer as in muon_direction (undefined = first step).
void thin_muon_step(at::Tensor& p, at::Tensor& momentum_buffer, const MuonOptions& options, double lr);

}  // namespace lorascope
