// Muon's step on one thin CPU matrix (a LoRA factor, r x n with n >= 4r) with Newton-Schulz,
// fused so that the long side is read and written as few times as the arithmetic needs:
//
//   M <- G + mu M                         one pass (at::add_out)
//   D  = nesterov ? G + mu M : M          one pass
//   NS(D) = Q Y                           Gram form (gram_newton_schulz.h): Y = D or one iterate
//   W <- (1 - lr wd) W - lr scale(W) Q Y  one GEMM into W (addmm_ with beta)
//
// The separate form (muon_direction + mul_ + add_) makes about eight passes over the long side
// and runs every Newton-Schulz iteration on it; on the CPU the optimizer step of LoRA adapters is
// bound by those passes. Same update up to rounding (OptimizersTest compares the two).
#pragma once

#include <ATen/ATen.h>

#include "optim/muon.h"

namespace lorascope {

// True when p (with its gradient) can take the fused step: Newton-Schulz on a matrix the Gram
// form applies to (gram_newton_schulz_applies).
bool thin_muon_step_applies(const at::Tensor& p, const MuonOptions& options);

// One Muon step on p in place; momentum_buffer as in muon_direction (undefined = first step).
void thin_muon_step(at::Tensor& p, at::Tensor& momentum_buffer, const MuonOptions& options, double lr);

}  // namespace lorascope
