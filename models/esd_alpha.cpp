#include "models/esd_alpha.h"

#include <ATen/core/grad_mode.h>  // at::NoGradGuard (not in <ATen/ATen.h> from LibTorch 2 on)
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

}  // namespace

PowerLawFit fit_power_law(std::vector<double> evals) {
  std::vector<double> x;
  for (double e : evals) if (e > kEvalsThresh) x.push_back(e);
  std::sort(x.begin(), x.end());
  if (x.size() < 2) {  // no candidate xmin: weightwatcher's fit raises and reports a failed layer
    PowerLawFit f;
    f.alpha = f.xmin = f.D = f.sigma = kNaN;
    f.num_evals = static_cast<int64_t>(x.size());
    f.status = "failed";
    return f;
  }
  std::vector<double> logs(x.size());
  for (size_t j = 0; j < x.size(); ++j) logs[j] = std::log(x[j]);
  const size_t N = x.size();
  // One (alpha, D) per candidate xmin = x[i], i < N - 1; weightwatcher's arrays start at
  // alpha = 0, D = 1, which is what a skipped candidate keeps.
  std::vector<double> alphas(N - 1, 0.0), Ds(N - 1, 1.0);
  if (static_cast<int64_t>(N) >= kSmallN) {  // WWFit.fit_power_law_standard
    for (size_t i = 0; i + 1 < N; ++i) {
      alphas[i] = 1.0 + static_cast<double>(N - i) / log_excess(logs, i);
      if (alphas[i] > 1.0) Ds[i] = ks_distance(x, i, alphas[i]);
    }
  } else {  // WWFit.fit_powerlaw_smallN (lambda_prior = 0)
    bool any = false;
    for (size_t i = 0; i + 1 < N; ++i) {
      const double n = static_cast<double>(N - i);
      if (static_cast<int64_t>(N - i) < kSmallNMinTail) continue;
      const double s = log_excess(logs, i);
      if (s <= 1e-12) continue;
      alphas[i] = 1.0 + (n - 1.0) / s;  // bias-corrected MLE
      if (alphas[i] <= 1.0) continue;
      Ds[i] = ks_distance(x, i, alphas[i]);
      any = true;
    }
    if (!any) {  // the whole set as the tail, unless it is degenerate
      const double s = log_excess(logs, 0);
      if (s > 1e-12) {
        alphas[0] = 1.0 + (static_cast<double>(N) - 1.0) / s;
        Ds[0] = ks_distance(x, 0, alphas[0]);
      }
    }
    // fit_powerlaw_smallN picks its xmin by D - 0.868 / sqrt(n), but WWFit.__init__ then
    // re-picks the least D over all candidates, as below: that is what weightwatcher reports.
  }
  // The first least D (numpy's argmin).
  size_t best = 0;
  for (size_t i = 1; i + 1 < N; ++i) {
    if (Ds[i] < Ds[best]) best = i;
  }
  PowerLawFit f;
  f.status = "success";
  f.num_evals = static_cast<int64_t>(N);
  f.alpha = alphas[best];
  f.xmin = x[best];
  f.D = Ds[best];
  f.sigma = (alphas[best] - 1.0) / std::sqrt(static_cast<double>(N - best));
  f.num_pl_spikes = static_cast<int64_t>(x.end() - std::lower_bound(x.begin(), x.end(), f.xmin));
  return f;
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
