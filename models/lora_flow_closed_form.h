// Closed forms of lora-rank-accuracy-gradient-flow.md: the LoRA gradient flow of the
// trace-squared loss from Y0 = 0 (App. C, E), the full-rank reference (eq. 20), the relative
// error of the limits (eq. 33, 34) and the Frobenius flow under spectral init (App. I).
//
// Trace-squared, c = Tr(W0) != 0, N = ||X0||_F^2:
//   kappa1 = N^2 + 4 c^2,  kappa2 = arsinh(N / (2|c|)) / sqrt(kappa1)        (eq. 314-315)
//   s(t)   = 2 N sinh(sqrt(kappa1) (t + kappa2)) + 4|c|
//   a(t)   = Tr(W0 - Y X) = sgn(c) kappa1 / s(t)                              (eq. 313)
//   p(t)   = [N sinh(sqrt(kappa1) t / 2) + sqrt(kappa1) cosh(sqrt(kappa1) t / 2)] / sqrt(|c| s)
//   q(t)   = 2 sinh(sqrt(kappa1) t / 2) / sqrt(|c| s)                         (eq. 373-374)
//   Y(t)   = q(t) c X0^T,  X(t) = p(t) X0,  Y X -> (c / N) X0^T X0            (eq. 377-378, 32)
// Checked against RK4 (h = 1e-3) to 1e-8, measured ~1e-11 (tests/test_rank_accuracy.cpp).
// Typo in the paper's limit algebra, not in these formulas: (392) has
// sqrt(|c|) / (sqrt(2) ||X0|| sqrt(N + sqrt(kappa1))), but (394) and (398)-(402) carry it on as
// sqrt(|c|) / sqrt(2 ||X0|| sqrt(...)). The limits are p -> sqrt(N + sqrt(kappa1)) / (sqrt(2) ||X0||)
// and q -> 2 / (sqrt(2) ||X0|| sqrt(N + sqrt(kappa1))), whose product 1 / N gives (405) as stated;
// the simulation agrees with the corrected limits, not with the printed (399) and (402).
// Evaluated in a form that cannot overflow: every sinh/cosh is divided by e^{u}, u >= 0.
//
// Frobenius with spectral init: each mode (s0 = sigma_i(W0), x0 = x0_i) follows the same
// scalar flow with c = s0 and N = x0^2 (eq. 46-47, 662-663), so y x = p q s0 x0^2 -> s0.
#pragma once

#include <ATen/ATen.h>

#include <vector>

namespace lorascope {

class TraceSquaredFlow {
 public:
  // c = Tr(W0), x0_norm2 = ||X0||_F^2; both nonzero (Assumptions 2.5-2.6), else invalid_argument.
  TraceSquaredFlow(double c, double x0_norm2);
  double a(double t) const;
  double p(double t) const;
  double q(double t) const;
  double c() const { return c_; }
  // Y(t) X(t) -> p q c X0^T X0 with p q -> 1 / N.
  double pq_limit() const { return 1.0 / n2_; }

 private:
  // sinh(sqrt(k1) t / 2) / sqrt(s(t)) (sign = -1) or cosh(...) / sqrt(s(t)) (sign = +1).
  double hyperbolic_over_root_s(double t, double sign) const;
  double c_, n2_, k1_, k2_;
};

// Full-rank flow dU/dt = -grad f(U) from U0 (eq. 20 for trace-squared; U0 + (1 - e^-t)(W0 - U0)
// for Frobenius). trace_squared selects the loss.
at::Tensor full_rank_flow(const at::Tensor& W0, const at::Tensor& U0, double t, bool trace_squared);

// eq. (33): lim ||YX - U|| / ||U|| = sqrt(n ||X0^T X0||^2 - ||X0||^4) / ||X0||^2, X0: (r, n).
double relative_error_limit(const at::Tensor& X0);
// eq. (34): E[R^2] over X0_ij ~ N(0, sigma^2) = (n^2 + n - 2) / (n r + 2).
double expected_squared_relative_error(int64_t n, int64_t r);
// 1/2 sum_{i>r} s_i^2 (eq. 53, Eckart-Young), s descending.
double eckart_young_loss(const std::vector<double>& s, int64_t r);

}  // namespace lorascope
