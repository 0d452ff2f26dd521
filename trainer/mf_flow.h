// The continuous-time limits of the mf optimizers, for `lorascope mf --set flow.method=...`:
//
//   gd / sgd (momentum 0)        dF_k/dt = -grad_k L                  (gradient flow)
//   specgd / muon (momentum 0)   dF_k/dt = -scale(F_k) T(grad_k L)    (SpecGF; T exact, T_beta
//                                                                      or Newton-Schulz as in optim.*)
// A step of the optimizer with learning rate eta is the Euler step of its field, so GD tracks
// the flow with an O(eta) error at fixed t = sum of learning rates (tests/test_mf_flow.cpp).
// Momentum, AdamW and weight decay have no field here: check_mf_config rejects them.
#pragma once

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include "optim/flow_integrator.h"

namespace lorascope {

// optim: the resolved "optim" section; Y: the target (m, n). The state is the factor list.
VectorField mf_flow_field(const nlohmann::json& optim, const at::Tensor& Y);

}  // namespace lorascope
