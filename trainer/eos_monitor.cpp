#include "trainer/eos_monitor.h"

#include "util/eigen.h"

#include <algorithm>
#include <cmath>

#include "models/hessian_spectrum.h"

namespace lorascope {

using nlohmann::json;

namespace {
std::vector<double> head(const Vec& v, int64_t n) {
  n = std::min<int64_t>(n, v.size());
  return std::vector<double>(v.data(), v.data() + n);
}

std::vector<double> distinct(std::vector<double> x, double tol) {
  std::sort(x.begin(), x.end());
  std::vector<double> out;
  for (double v : x) {
    if (out.empty() || v - out.back() > tol) out.push_back(v);
  }
  return out;
}
}  // namespace

std::vector<double> target_projections(const Mat& product, const EosTarget& target) {
  std::vector<double> p;
  for (size_t i = 0; i < target.s.size(); ++i) {
    p.push_back(target.U.col(i).dot(product * target.V.col(i)));
  }
  return p;
}

double subspace_distance(const DeepLinear& net, int64_t r) {
  double worst = 0;
  for (int l = 1; l < net.depth(); ++l) {
    Eigen::JacobiSVD<Mat> below(net.weights()[l - 1], Eigen::ComputeFullU);
    Eigen::JacobiSVD<Mat> above(net.weights()[l], Eigen::ComputeFullV);
    Mat D = below.matrixU().leftCols(r).transpose() * above.matrixV().leftCols(r);  // (r, r)
    for (int64_t j = 0; j < r; ++j) {
      if (D(j, j) < 0) D.col(j) *= -1;
    }
    worst = std::max(worst, (D - Mat::Identity(r, r)).norm());
  }
  return worst;
}

json eos_record(const DeepLinear& net, const EosTarget& target, bool layers) {
  const auto r = static_cast<int64_t>(target.s.size());
  const Mat P = net.product();
  Eigen::JacobiSVD<Mat> svd(P);
  json rec = {{"sigma", head(svd.singularValues(), std::min<int64_t>(r + 1, net.dim()))},
              {"proj", target_projections(P, target)}};
  if (!layers) return rec;
  json per_layer = json::array();
  std::vector<Vec> sv;
  for (const auto& W : net.weights()) {
    sv.push_back(Eigen::JacobiSVD<Mat>(W).singularValues());
    per_layer.push_back(head(sv.back(), r));
  }
  double gap = 0;
  for (int l = 0; l + 1 < net.depth(); ++l) {
    for (int64_t i = 0; i < r; ++i) {
      gap = std::max(gap, std::abs(sv.back()(i) * sv.back()(i) - sv[l](i) * sv[l](i)));
    }
  }
  rec["layer_sigma"] = per_layer;
  rec["balance_gap"] = gap;
  rec["subspace_dist"] = net.depth() > 1 ? subspace_distance(net, r) : 0.0;
  return rec;
}

std::vector<double> sharpness(const DeepLinear& net, const Mat& M, int k, int iters, uint64_t seed) {
  const MatVec op = [&](const Vec& v) { return net.hvp_flat(M, v); };
  return lanczos_top_k(op, net.num_params(), k, iters, seed, 1e-10);
}

void LatePhase::observe(const std::vector<double>& proj, double sigma1) {
  proj_.push_back(proj);
  sigma1_.push_back(sigma1);
  if (static_cast<int64_t>(proj_.size()) > window_) {
    proj_.pop_front();
    sigma1_.pop_front();
  }
}

json LatePhase::summary() const {
  const size_t n = proj_.size(), r = n ? proj_.front().size() : 0;
  std::vector<double> amplitude(r, 0.0);
  std::vector<bool> oscillating(r, false);
  for (size_t i = 0; i < r; ++i) {
    double lo = INFINITY, hi = -INFINITY;
    for (const auto& p : proj_) lo = std::min(lo, p[i]), hi = std::max(hi, p[i]);
    amplitude[i] = n ? hi - lo : 0.0;
    oscillating[i] = amplitude[i] > tol_;
  }
  int period = 0;
  for (size_t p = 1; p <= 32 && 2 * p <= n && period == 0; ++p) {
    bool repeats = true;
    for (size_t t = 0; t + p < n && repeats; ++t) {
      for (size_t i = 0; i < r && repeats; ++i) repeats = std::abs(proj_[t + p][i] - proj_[t][i]) <= tol_;
    }
    if (repeats) period = static_cast<int>(p);
  }
  std::vector<double> first;
  for (const auto& p : proj_) first.push_back(p.front());
  // Still learning (or leaving a saddle) rather than oscillating: component 1 moves one way only.
  bool up = true, down = true;
  for (size_t t = 1; t < first.size(); ++t) up = up && first[t] >= first[t - 1], down = down && first[t] <= first[t - 1];
  const bool drifting = oscillating.size() && oscillating[0] && (up || down);
  return {{"amplitude", amplitude},
          {"drifting", drifting},
          {"oscillating", oscillating},
          {"oscillating_components", std::count(oscillating.begin(), oscillating.end(), true)},
          {"period", period},
          {"values", distinct(first, tol_)},
          {"sigma1_values", distinct(std::vector<double>(sigma1_.begin(), sigma1_.end()), tol_)}};
}

}  // namespace lorascope
