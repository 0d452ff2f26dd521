// optim/flow_integrator against closed-form solutions in float64: a linear matrix ODE
// (solution exp(t M) S0) and a harmonic oscillator split over two tensors.
#include <gtest/gtest.h>

#include <cmath>

#include "optim/flow_integrator.h"
#include "tests/tensor_fixtures.h"

namespace lorascope {
namespace {

const auto f64 = at::TensorOptions().dtype(at::kDouble);

struct LinearOde {
  at::Tensor M, S0;  // dS/dt = M S, S(0) = S0: (4, 4), (4, 3)
  LinearOde() {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(7);
    M = at::randn({4, 4}, gen, f64) * 0.5;
    S0 = at::randn({4, 3}, gen, f64);
  }
  VectorField field() const {
    return [M = M](double, const FlowState& S) { return FlowState{at::matmul(M, S[0])}; };
  }
  at::Tensor exact(double t) const { return at::matmul(at::linalg_matrix_exp(M * t), S0); }
};

FlowState integrate_fixed(FlowMethod method, const VectorField& f, FlowState S, double T, int steps) {
  const double h = T / steps;
  for (int i = 0; i < steps; ++i) {
    S = method == FlowMethod::RK4 ? rk4_step(f, i * h, S, h) : euler_step(f, i * h, S, h);
  }
  return S;
}

TEST(FlowIntegratorTest, Rk4MatchesMatrixExponential) {
  LinearOde ode;
  const auto S = integrate_fixed(FlowMethod::RK4, ode.field(), {ode.S0}, 1.0, 200);
  EXPECT_LT(max_abs(S[0] - ode.exact(1.0)), 1e-9);
}

TEST(FlowIntegratorTest, Rk4GlobalErrorIsFourthOrderAndEulerFirstOrder) {
  LinearOde ode;
  const auto exact = ode.exact(2.0);
  auto err = [&](FlowMethod m, int steps) {
    return max_abs(integrate_fixed(m, ode.field(), {ode.S0}, 2.0, steps)[0] - exact);
  };
  const double rk4_ratio = err(FlowMethod::RK4, 20) / err(FlowMethod::RK4, 40);
  const double euler_ratio = err(FlowMethod::Euler, 400) / err(FlowMethod::Euler, 800);
  EXPECT_NEAR(std::log2(rk4_ratio), 4.0, 0.2) << "ratio " << rk4_ratio;
  EXPECT_NEAR(std::log2(euler_ratio), 1.0, 0.1) << "ratio " << euler_ratio;
}

TEST(FlowIntegratorTest, Rk45LandsOnRequestedTimesWithinTolerance) {
  LinearOde ode;
  RK45Options o;
  o.rtol = 1e-10;
  o.atol = 1e-12;
  DormandPrince dp(ode.field(), {ode.S0}, 0.0, o);
  for (double t : {0.1, 0.5, 1.0, 3.0}) {
    dp.advance_to(t);
    EXPECT_EQ(dp.t(), t);
    const auto exact = ode.exact(t);
    EXPECT_LT(max_abs(dp.state()[0] - exact) / max_abs(exact), 1e-8) << "t = " << t;
  }
  EXPECT_GT(dp.stats().accepted, 4);
  EXPECT_EQ(dp.stats().evaluations, 1 + 1 + 6 * (dp.stats().accepted + dp.stats().rejected));
  // A looser tolerance takes fewer steps and is less accurate, yet within its own bound.
  o.rtol = 1e-5;
  o.atol = 1e-7;
  DormandPrince loose(ode.field(), {ode.S0}, 0.0, o);
  loose.advance_to(3.0);
  EXPECT_LT(loose.stats().accepted, dp.stats().accepted);
  const double loose_err = max_abs(loose.state()[0] - ode.exact(3.0)) / max_abs(ode.exact(3.0));
  EXPECT_LT(loose_err, 1e-4);
  EXPECT_GT(loose_err, 1e-11);
}

// x' = v, v' = -x over two tensors: the state list is integrated jointly. A first step far too
// long forces rejections, after which the controller recovers the accuracy.
TEST(FlowIntegratorTest, Rk45RejectsTooLongStepsOnOscillator) {
  VectorField f = [](double, const FlowState& S) { return FlowState{S[1].clone(), -S[0]}; };
  const auto x0 = at::tensor({1.0, 0.0, 2.0}, f64), v0 = at::tensor({0.0, 1.0, -1.0}, f64);
  RK45Options o;
  o.rtol = 1e-9;
  o.atol = 1e-12;
  o.h0 = 5.0;
  DormandPrince dp(f, {x0, v0}, 0.0, o);
  const double T = 10.0;
  dp.advance_to(T);
  EXPECT_GE(dp.stats().rejected, 1);
  const auto x = x0 * std::cos(T) + v0 * std::sin(T), v = -x0 * std::sin(T) + v0 * std::cos(T);
  EXPECT_LT(max_abs(dp.state()[0] - x), 1e-7);
  EXPECT_LT(max_abs(dp.state()[1] - v), 1e-7);
}

TEST(FlowIntegratorTest, Rk45ThrowsWhenTheStateBlowsUp) {
  // y' = y^2, y(0) = 1 blows up at t = 1.
  VectorField f = [](double, const FlowState& S) { return FlowState{S[0].square()}; };
  DormandPrince dp(f, {at::ones({1}, f64)}, 0.0, RK45Options{});
  EXPECT_THROW(dp.advance_to(2.0), std::runtime_error);
  EXPECT_LT(dp.t(), 1.0 + 1e-9);  // stopped at the blow-up (up to rounding of t), not past it
  EXPECT_GT(dp.state()[0].item<double>(), 1e8);
  EXPECT_THROW(DormandPrince(f, {at::ones({1}, f64)}, 0.0, RK45Options{0, 0}),
               std::invalid_argument);
  EXPECT_THROW(parse_flow_method("rk5"), std::invalid_argument);
  EXPECT_EQ(parse_flow_method("rk45"), FlowMethod::RK45);
}

}  // namespace
}  // namespace lorascope
