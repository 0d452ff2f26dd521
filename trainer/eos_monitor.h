// What lorascope eos measures on a deep linear network (deep-mf-edge-of-stability.md):
//   eos_record:   singular values of W_{L:1} sorted, and as projections u*_i^T W_{L:1} v*_i on
//                 the target's singular pairs (sorted values swap names when two of them cross
//                 and draw fake oscillations; projections keep each component's identity);
//                 per-layer singular values, the balance gap max_{i<=r, l<L} |s_i(W_L)^2 -
//                 s_i(W_l)^2| (Fig. 4) and the subspace distance of eq. (11).
//   sharpness:    the top-k Hessian eigenvalues by Lanczos on analytic Hessian-vector products.
//   LatePhase:    the projections over the last N steps: amplitude, period, and the set of
//                 values a bifurcation diagram draws (Fig. 1).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <deque>
#include <vector>

#include "models/deep_linear.h"

namespace lorascope {

struct EosTarget {
  Mat M;     // U diag(s) V^T, (d, d)
  Mat U, V;  // (d, d)
  std::vector<double> s;
};

nlohmann::json eos_record(const DeepLinear& net, const EosTarget& target, bool layers);
// Projections u*_i^T W_{L:1} v*_i for the r target components.
std::vector<double> target_projections(const Mat& product, const EosTarget& target);
// eq. (11) ||U_{l-1,r}^T V_{l,r} - I_r||_F, maximised over l. Each column of U^T V is sign-fixed
// first (SVD vectors are defined up to sign; the paper's formula would read 2 for aligned
// vectors of opposite signs).
double subspace_distance(const DeepLinear& net, int64_t r);
std::vector<double> sharpness(const DeepLinear& net, const Mat& M, int k, int iters, uint64_t seed);

class LatePhase {
 public:
  LatePhase(int64_t window, double tol) : window_(window), tol_(tol) {}
  void observe(const std::vector<double>& proj, double sigma1);
  bool full() const { return static_cast<int64_t>(proj_.size()) == window_; }
  // amplitude (max - min per component), oscillating (amplitude > tol), period (smallest p <= 32
  // with |x_{t+p} - x_t| <= tol for every component over the window; 1 = converged, 0 = none:
  // a higher period or chaos), values (distinct late values of component 1 and of sorted
  // sigma_1, merged within tol), drifting (component 1 moved monotonically: not settled yet).
  nlohmann::json summary() const;

 private:
  int64_t window_;
  double tol_;
  std::deque<std::vector<double>> proj_;
  std::deque<double> sigma1_;
};

}  // namespace lorascope
