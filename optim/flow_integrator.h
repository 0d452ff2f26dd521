// Integrators for gradient flows dS/dt = F(t, S), where the state S is a list of tensors (the
// factors of a model) and F returns d/dt of each. They know no models: the caller's field holds
// the physics (GD field -grad, SpecGF field -T_beta(grad), ...).
//
//   euler   S <- S + h F(t, S)                 one GD step with learning rate h
//   rk4     classical Runge-Kutta, fixed h     global error O(h^4)
//   rk45    Dormand-Prince 5(4) with FSAL and step-size control (Hairer, Norsett & Wanner,
//           "Solving ODEs I", II.4): the 5th-order solution is kept, the embedded 4th-order one
//           estimates the local error, a step is accepted when
//             sqrt(mean_i (e_i / (atol + rtol * max(|S_i|, |S_new,i|)))^2) <= 1
//           and the next h is h * clamp(0.9 * err^(-1/5), 0.2, 5).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace lorascope {

using FlowState = std::vector<at::Tensor>;
using VectorField = std::function<FlowState(double t, const FlowState& state)>;

enum class FlowMethod { None, Euler, RK4, RK45 };
// "none" | "euler" | "rk4" | "rk45"; throws std::invalid_argument otherwise.
FlowMethod parse_flow_method(const std::string& name);
std::string to_string(FlowMethod method);

// S + h * sum_i c_i K_i, tensor by tensor (c_i = 0 terms skipped).
FlowState flow_axpy(const FlowState& S, double h, const std::vector<double>& c,
                    const std::vector<const FlowState*>& K);

FlowState euler_step(const VectorField& field, double t, const FlowState& S, double h);
FlowState rk4_step(const VectorField& field, double t, const FlowState& S, double h);

struct RK45Options {
  double rtol = 1e-8;
  double atol = 1e-10;
  double h0 = 0;             // first trial step; 0 = Hairer's starting-step heuristic
  double h_max = 0;          // 0 = unbounded
  int64_t max_steps = 1000000;  // accepted + rejected, per advance_to call
};

struct RK45Stats {
  int64_t accepted = 0, rejected = 0, evaluations = 0;
  double last_h = 0;  // the last accepted step
};

// Adaptive Dormand-Prince integration that stops exactly at requested times (the last step
// before a target is shortened to land on it), so a caller can log at fixed t.
class DormandPrince {
 public:
  DormandPrince(VectorField field, FlowState state, double t0, RK45Options options);

  // Integrates forward to t_target >= t(). Throws std::runtime_error when the step size
  // underflows, the state stops being finite, or max_steps is exceeded.
  void advance_to(double t_target);

  const FlowState& state() const { return state_; }
  double t() const { return t_; }
  const RK45Stats& stats() const { return stats_; }

 private:
  double initial_step(double t_target);
  double error_norm(const FlowState& err, const FlowState& y0, const FlowState& y1) const;

  VectorField field_;
  FlowState state_, f_;  // f_ = F(t_, state_), reused as the first stage (FSAL)
  double t_;
  double h_ = 0;
  RK45Options options_;
  RK45Stats stats_;
};

}  // namespace lorascope
