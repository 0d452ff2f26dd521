#include "models/esd_alpha.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace lorascope {

namespace {

constexpr double kEvalsThresh = 1e-5;   // weightwatcher constants.EVALS_THRESH
constexpr int64_t kSmallN = 20;         // WW_powerlaw.SMALL_N_CUTOFF
constexpr int64_t kSmallNMinTail = 8;   // fit_powerlaw_smallN's k_min
constexpr int64_t kMinEvals = 8, kMaxEvals = 15000, kMaxN = 50000;  // analyze() defaults
const double kNaN = std::numeric_limits<double>::quiet_NaN();

// sum_{j >= i} ln x_j - n ln x_i, summed in weightwatcher's order (the tail's logs, then minus).
double log_excess(const std::vector<double>& logs, size_t i) {
  double s = 0;
  for (size_t j = i; j < logs.size(); ++j) s += logs[j];
  return s - static_cast<double>(logs.size() - i) * logs[i];
}

// KS distance between the tail x[i:] and the power law from x[i] with exponent alpha.
double ks_distance(const std::vector<double>& x, size_t i, double alpha) {
  const double n = static_cast<double>(x.size() - i);
  double d = 0;
  for (size_t t = 0; i + t < x.size(); ++t) {
    const double fit = 1.0 - std::pow(x[i + t] / x[i], -alpha + 1.0);
    d = std::max(d, std::abs(fit - static_cast<double>(t) / n));
  }
  return d;
}

PowerLawFit finish(const std::vector<double>& x, size_t best, double alpha, double D) {
  PowerLawFit f;
  f.status = "success";
  f.num_evals = static_cast<int64_t>(x.size());
  f.alpha = alpha;
  f.xmin = x[best];
  f.D = D;
  f.sigma = (alpha - 1.0) / std::sqrt(static_cast<double>(x.size() - best));
  f.num_pl_spikes = static_cast<int64_t>(x.end() - std::lower_bound(x.begin(), x.end(), f.xmin));
  return f;
}

}  // namespace

PowerLawFit fit_power_law(std::vector<double> evals) {
  std::vector<double> x;
  for (double e : evals) if (e > kEvalsThresh) x.push_back(e);
  std::sort(x.begin(), x.end());
  if (x.empty()) {  // weightwatcher's fit raises and reports a failed layer
    PowerLawFit f;
    f.alpha = f.xmin = f.D = f.sigma = kNaN;
    f.status = "failed";
    return f;
  }
  std::vector<double> logs(x.size());
  for (size_t j = 0; j < x.size(); ++j) logs[j] = std::log(x[j]);
  const size_t N = x.size();
  if (static_cast<int64_t>(N) >= kSmallN) {  // WWFit.fit_power_law_standard
    size_t best = 0;
    double best_D = std::numeric_limits<double>::infinity(), best_alpha = 0;
    for (size_t i = 0; i + 1 < N; ++i) {
      const double n = static_cast<double>(N - i);
      const double alpha = 1.0 + n / log_excess(logs, i);
      const double D = alpha > 1.0 ? ks_distance(x, i, alpha) : 1.0;
      if (D < best_D) {  // strict: the first minimum wins, as numpy's argmin
        best = i;
        best_D = D;
        best_alpha = alpha;
      }
    }
    return finish(x, best, best_alpha, best_D);
  }
  // WWFit.fit_powerlaw_smallN (lambda_prior = 0).
  size_t best = 0;
  double best_J = std::numeric_limits<double>::infinity(), best_alpha = 0, best_D = 1.0;
  bool found = false;
  for (size_t i = 0; i + 1 < N; ++i) {
    const int64_t n_int = static_cast<int64_t>(N - i);
    if (n_int < kSmallNMinTail) continue;
    const double n = static_cast<double>(n_int);
    const double s = log_excess(logs, i);
    if (s <= 1e-12) continue;
    const double alpha = 1.0 + (n - 1.0) / s;
    if (alpha <= 1.0) continue;
    const double D = ks_distance(x, i, alpha);
    const double J = D - 0.868 / std::sqrt(n);
    if (!found || J < best_J) {
      found = true;
      best = i;
      best_J = J;
      best_alpha = alpha;
      best_D = D;
    }
  }
  if (found) return finish(x, best, best_alpha, best_D);
  const double n = static_cast<double>(N);
  const double s = log_excess(logs, 0);
  if (s <= 1e-12) {  // all equal: weightwatcher's "pathological case" defaults
    PowerLawFit f = finish(x, 0, 1.0, 1.0);
    f.sigma = 0.0;
    return f;
  }
  const double alpha = 1.0 + (n - 1.0) / s;
  return finish(x, 0, alpha, ks_distance(x, 0, alpha));
}

std::vector<double> esd_eigenvalues(const at::Tensor& W) {
  at::NoGradGuard no_grad;
  const at::Tensor sv = at::linalg_svdvals(W.detach().to(at::kCPU, at::kDouble)).contiguous();
  std::vector<double> ev(sv.data_ptr<double>(), sv.data_ptr<double>() + sv.numel());
  for (auto& e : ev) e *= e;
  std::sort(ev.begin(), ev.end());
  return ev;
}

PowerLawFit esd_alpha(const at::Tensor& W) {
  const int64_t N = std::max(W.size(0), W.size(1)), M = std::min(W.size(0), W.size(1));
  if (M < kMinEvals || M > kMaxEvals || N > kMaxN) {
    PowerLawFit f;
    f.alpha = f.xmin = f.D = f.sigma = kNaN;
    f.status = "skipped";
    return f;
  }
  return fit_power_law(esd_eigenvalues(W));
}

}  // namespace lorascope
