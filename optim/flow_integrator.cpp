#include "optim/flow_integrator.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace lorascope {

FlowMethod parse_flow_method(const std::string& name) {
  if (name == "none") return FlowMethod::None;
  if (name == "euler") return FlowMethod::Euler;
  if (name == "rk4") return FlowMethod::RK4;
  if (name == "rk45") return FlowMethod::RK45;
  throw std::invalid_argument("expected one of none, euler, rk4, rk45, got \"" + name + "\"");
}

std::string to_string(FlowMethod method) {
  switch (method) {
    case FlowMethod::None: return "none";
    case FlowMethod::Euler: return "euler";
    case FlowMethod::RK4: return "rk4";
    case FlowMethod::RK45: return "rk45";
  }
  return "?";
}

FlowState flow_axpy(const FlowState& S, double h, const std::vector<double>& c,
                    const std::vector<const FlowState*>& K) {
  FlowState out;
  out.reserve(S.size());
  for (size_t j = 0; j < S.size(); ++j) {
    at::Tensor acc;
    for (size_t i = 0; i < c.size(); ++i) {
      if (c[i] == 0.0) continue;
      const auto& k = (*K[i])[j];
      acc = acc.defined() ? acc.add(k, c[i]) : k * c[i];
    }
    out.push_back(acc.defined() ? S[j].add(acc, h) : S[j].clone());
  }
  return out;
}

FlowState euler_step(const VectorField& field, double t, const FlowState& S, double h) {
  const auto k1 = field(t, S);
  return flow_axpy(S, h, {1.0}, {&k1});
}

FlowState rk4_step(const VectorField& field, double t, const FlowState& S, double h) {
  const auto k1 = field(t, S);
  const auto k2 = field(t + h / 2, flow_axpy(S, h / 2, {1.0}, {&k1}));
  const auto k3 = field(t + h / 2, flow_axpy(S, h / 2, {1.0}, {&k2}));
  const auto k4 = field(t + h, flow_axpy(S, h, {1.0}, {&k3}));
  return flow_axpy(S, h / 6, {1.0, 2.0, 2.0, 1.0}, {&k1, &k2, &k3, &k4});
}

namespace {

// Dormand-Prince 5(4) tableau (Hairer, Norsett & Wanner, Table II.5.2).
constexpr double C[7] = {0, 1.0 / 5, 3.0 / 10, 4.0 / 5, 8.0 / 9, 1, 1};
const std::vector<std::vector<double>> A = {
    {},
    {1.0 / 5},
    {3.0 / 40, 9.0 / 40},
    {44.0 / 45, -56.0 / 15, 32.0 / 9},
    {19372.0 / 6561, -25360.0 / 2187, 64448.0 / 6561, -212.0 / 729},
    {9017.0 / 3168, -355.0 / 33, 46732.0 / 5247, 49.0 / 176, -5103.0 / 18656},
    {35.0 / 384, 0, 500.0 / 1113, 125.0 / 192, -2187.0 / 6784, 11.0 / 84}};
// b (5th order) minus b_hat (4th order): the local error estimate's weights.
const std::vector<double> E = {71.0 / 57600,     0,          -71.0 / 16695, 71.0 / 1920,
                               -17253.0 / 339200, 22.0 / 525, -1.0 / 40};

bool finite(const FlowState& S) {
  for (const auto& s : S) {
    if (!at::isfinite(s).all().item<bool>()) return false;
  }
  return true;
}

}  // namespace

DormandPrince::DormandPrince(VectorField field, FlowState state, double t0, RK45Options options)
    : field_(std::move(field)), state_(std::move(state)), t_(t0), options_(options) {
  if (!(options_.rtol >= 0) || !(options_.atol >= 0) || options_.rtol + options_.atol <= 0) {
    throw std::invalid_argument("rk45: expected rtol >= 0, atol >= 0, not both zero");
  }
  f_ = field_(t_, state_);
  stats_.evaluations = 1;
}

double DormandPrince::error_norm(const FlowState& err, const FlowState& y0,
                                 const FlowState& y1) const {
  double sum = 0;
  int64_t count = 0;
  for (size_t j = 0; j < err.size(); ++j) {
    const auto scale = at::maximum(y0[j].abs(), y1[j].abs()) * options_.rtol + options_.atol;
    sum += (err[j] / scale).square().sum().item<double>();
    count += err[j].numel();
  }
  return count > 0 ? std::sqrt(sum / static_cast<double>(count)) : 0.0;
}

// Hairer's starting step (II.4): h such that an Euler step changes the state by ~1% of its
// scale, refined by a second-derivative estimate.
double DormandPrince::initial_step(double t_target) {
  const double span = t_target - t_;
  const double d0 = error_norm(state_, state_, state_);
  const double d1 = error_norm(f_, state_, state_);
  double h0 = (d0 < 1e-5 || d1 < 1e-5) ? 1e-6 : 0.01 * d0 / d1;
  h0 = std::min(h0, span);
  const auto y1 = flow_axpy(state_, h0, {1.0}, {&f_});
  const auto f1 = field_(t_ + h0, y1);
  ++stats_.evaluations;
  const auto df = flow_axpy(f1, -1.0, {1.0}, {&f_});
  const double d2 = error_norm(df, state_, state_) / h0;
  const double h1 = std::max(d1, d2) <= 1e-15 ? std::max(1e-6, h0 * 1e-3)
                                              : std::pow(0.01 / std::max(d1, d2), 1.0 / 5);
  return std::min(100 * h0, h1);
}

void DormandPrince::advance_to(double t_target) {
  if (t_target < t_) {
    throw std::invalid_argument("rk45: cannot integrate backwards from t = " + std::to_string(t_) +
                                " to " + std::to_string(t_target));
  }
  if (t_target == t_) return;
  if (h_ <= 0) h_ = options_.h0 > 0 ? options_.h0 : initial_step(t_target);
  int64_t tries = 0;
  while (t_ < t_target) {
    if (++tries > options_.max_steps) {
      throw std::runtime_error("rk45: more than " + std::to_string(options_.max_steps) +
                               " steps before t = " + std::to_string(t_target));
    }
    if (options_.h_max > 0) h_ = std::min(h_, options_.h_max);
    // Land exactly on the target; a last sliver shorter than 1e-12 of the span is absorbed.
    const bool last = t_ + h_ >= t_target - 1e-12 * std::max(1.0, std::abs(t_target));
    const double h = last ? t_target - t_ : h_;
    if (!(h > 1e-14 * std::max(1.0, std::abs(t_)))) {
      throw std::runtime_error("rk45: step size underflow at t = " + std::to_string(t_));
    }
    std::vector<FlowState> K = {f_};
    for (int s = 1; s < 7; ++s) {
      std::vector<const FlowState*> ks;
      for (auto& k : K) ks.push_back(&k);
      K.push_back(field_(t_ + C[s] * h, flow_axpy(state_, h, A[s], ks)));
    }
    stats_.evaluations += 6;
    // Stage 7 was evaluated at the 5th-order solution y1 = state + h sum a_7i K_i (FSAL).
    std::vector<const FlowState*> ks;
    for (auto& k : K) ks.push_back(&k);
    auto y1 = flow_axpy(state_, h, A[6], {ks.begin(), ks.begin() + 6});
    FlowState zero;
    for (const auto& s : state_) zero.push_back(at::zeros_like(s));
    const auto err_state = flow_axpy(zero, h, E, ks);
    const double err = finite(y1) ? error_norm(err_state, state_, y1) : INFINITY;
    if (err <= 1.0) {
      state_ = std::move(y1);
      f_ = std::move(K[6]);
      t_ = last ? t_target : t_ + h;
      ++stats_.accepted;
      stats_.last_h = h;
      const double grow = err == 0 ? 5.0 : std::clamp(0.9 * std::pow(err, -0.2), 0.2, 5.0);
      // A shortened last step says nothing about the step the dynamics allow: keep h_.
      if (!last || h >= h_) h_ = h * grow;
    } else {
      ++stats_.rejected;
      h_ = h * (std::isfinite(err) ? std::clamp(0.9 * std::pow(err, -0.2), 0.2, 1.0) : 0.2);
    }
  }
}

}  // namespace lorascope
