#include "models/lora_flow_closed_form.h"

#include <cmath>
#include <stdexcept>

namespace lorascope {

TraceSquaredFlow::TraceSquaredFlow(double c, double x0_norm2) : c_(c), n2_(x0_norm2) {
  if (c == 0 || !(x0_norm2 > 0)) {
    throw std::invalid_argument("trace-squared flow: needs Tr(W0) != 0 and X0 != 0 (the flow "
                                "otherwise stays at its initial stationary point)");
  }
  k1_ = n2_ * n2_ + 4 * c * c;
  k2_ = std::asinh(n2_ / (2 * std::abs(c))) / std::sqrt(k1_);
}

// With u = sqrt(k1) (t + k2) > 0:  s = e^u [N (1 - e^-2u) + 4|c| e^-u].
double TraceSquaredFlow::a(double t) const {
  const double u = std::sqrt(k1_) * (t + k2_), e = std::exp(-u);
  return std::copysign(1.0, c_) * k1_ * e / (n2_ * (1 - e * e) + 4 * std::abs(c_) * e);
}

double TraceSquaredFlow::hyperbolic_over_root_s(double t, double sign) const {
  const double root = std::sqrt(k1_);
  const double u = root * (t + k2_), e = std::exp(-u);
  // sinh|cosh(root t / 2) = e^{root t/2} (1 -|+ e^{-root t}) / 2 and sqrt(e^u) = e^{root t/2} e^{root k2/2}.
  const double num = 0.5 * (1 + sign * std::exp(-root * t)) * std::exp(-root * k2_ / 2);
  return num / std::sqrt(n2_ * (1 - e * e) + 4 * std::abs(c_) * e);
}

double TraceSquaredFlow::p(double t) const {
  const double root_c = std::sqrt(std::abs(c_));
  return (n2_ * hyperbolic_over_root_s(t, -1) + std::sqrt(k1_) * hyperbolic_over_root_s(t, +1)) /
         root_c;
}

double TraceSquaredFlow::q(double t) const {
  return 2 * hyperbolic_over_root_s(t, -1) / std::sqrt(std::abs(c_));
}

at::Tensor full_rank_flow(const at::Tensor& W0, const at::Tensor& U0, double t, bool trace_squared) {
  if (trace_squared) {
    const int64_t n = W0.size(0);
    return at::eye(n, W0.options()) * ((W0 - U0).trace() * (-std::expm1(-n * t) / n)) + U0;
  }
  return U0 + (W0 - U0) * (-std::expm1(-t));
}

double relative_error_limit(const at::Tensor& X0) {
  const double n = static_cast<double>(X0.size(1));
  const double x2 = X0.square().sum().item<double>();
  const double g2 = at::matmul(X0.t(), X0).square().sum().item<double>();
  return std::sqrt(std::max(0.0, n * g2 - x2 * x2)) / x2;
}

double expected_squared_relative_error(int64_t n, int64_t r) {
  const double nd = static_cast<double>(n), rd = static_cast<double>(r);
  return (nd * nd + nd - 2) / (nd * rd + 2);
}

double eckart_young_loss(const std::vector<double>& s, int64_t r) {
  double sum = 0;
  for (size_t i = static_cast<size_t>(std::max<int64_t>(r, 0)); i < s.size(); ++i) sum += s[i] * s[i];
  return 0.5 * sum;
}

}  // namespace lorascope
