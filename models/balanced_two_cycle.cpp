#include "models/balanced_two_cycle.h"

#include <cmath>

namespace lorascope {

double balanced_scalar_step(double rho, double s, int depth, double eta) {
  return rho * (1 + eta * (s - std::pow(rho, depth)) * std::pow(rho, depth - 2));
}

double two_cycle_g(double rho, double s, int depth, double eta, double eta_factor) {
  const int L = depth;
  const double z = 1 + eta_factor * eta * (s - std::pow(rho, L)) * std::pow(rho, L - 2);
  return std::pow(rho, L) * (1 + std::pow(z, 2 * L - 1)) / (1 + std::pow(z, L - 1)) - s;
}

std::optional<std::pair<double, double>> two_cycle_values(double s, int depth, double eta,
                                                          double eta_factor) {
  const double fixed = std::pow(s, 1.0 / depth);
  // g vanishes at the fixed point too; the 2-cycle's lower root is the sign change of g nearest
  // below it. Scan from the fixed point downwards, then bisect.
  const int n = 20000;
  auto g = [&](double r) { return two_cycle_g(r, s, depth, eta, eta_factor); };
  double hi = fixed * (1 - 1e-7), g_hi = g(hi);
  for (int i = 1; i <= n; ++i) {
    const double lo = fixed * (1 - 1e-7) * (1 - double(i) / n);
    const double g_lo = g(lo);
    if (!std::isfinite(g_lo)) break;
    if ((g_lo < 0) != (g_hi < 0)) {
      double a = lo, b = hi;
      for (int it = 0; it < 200; ++it) {
        const double m = 0.5 * (a + b);
        ((g(m) < 0) == (g(a) < 0) ? a : b) = m;
      }
      const double rho1 = 0.5 * (a + b);
      const double rho2 = balanced_scalar_step(rho1, s, depth, eta_factor * eta);
      return std::make_pair(std::pow(rho1, depth), std::pow(rho2, depth));
    }
    hi = lo;
    g_hi = g_lo;
  }
  return std::nullopt;
}

}  // namespace lorascope
