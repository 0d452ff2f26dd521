// The deep linear network of deep-mf-edge-of-stability.md: W_{L:1} = W_L ... W_1, every W_l d x d,
// fitted to M* with
//   f = c ||W_{L:1} - M*||_F^2,   c = 1/2 (eq. (1), the theory)  or  c = 1 (the figures' code).
// With c = 1 every gradient doubles, so the figures' learning rates are half the theory's
// (App. B.1: 0.0309 / 2 = 0.0154).
//
// The diagonal linear network of eq. (5) is the same chain with every W_l kept diagonal: its
// gradient and Hessian are the deep network's projected onto the diagonal entries.
//
// Float64 Eigen throughout: the matrices are tiny (d <= 64) and the studies take 10^4 - 10^6 steps.
// Gradients and Hessian-vector products are analytic; tests/test_eos.cpp checks both against
// ATen autograd (double backward).
#pragma once

#include "util/eigen.h"

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace lorascope {

using Mat = Eigen::MatrixXd;
using Vec = Eigen::VectorXd;

enum class DeepInit {
  Balanced,    // W_l = alpha I for all l                      (eq. (3), left)
  Unbalanced,  // W_L = 0, W_l = alpha I for l < L             (eq. (3), right)
  Orthogonal,  // W_L = 0, W_l = alpha P_l, P_l Haar-orthogonal (App. B.4 "Orthogonal")
  Gaussian,    // W_L = 0, W_l = alpha H_l, H_l iid N(0, 1)     (App. B.4 "Random")
};
DeepInit parse_deep_init(const std::string& name);  // throws std::invalid_argument

// A d x d Haar-distributed orthogonal matrix (QR of a Gaussian, signs fixed by diag(R)).
Mat random_orthogonal(int64_t d, std::mt19937_64& rng);

class DeepLinear {
 public:
  // W[0] = W_1 (applied first) ... W[L-1] = W_L. A diagonal network needs diagonal W and M.
  DeepLinear(std::vector<Mat> W, double loss_scale, bool diagonal);

  static DeepLinear init(int64_t d, int depth, DeepInit init, double alpha, double loss_scale,
                         bool diagonal, std::mt19937_64& rng);

  Mat product() const;                          // W_{L:1}, (d, d)
  Mat partial(int hi, int lo) const;            // W_hi ... W_lo (0-based, identity if hi < lo)
  double loss(const Mat& M) const;
  // Loss at the current weights; grad[l] = 2c W_{L:l+1}^T (W_{L:1} - M) W_{l-1:1}^T.
  double loss_and_grad(const Mat& M, std::vector<Mat>& grad) const;
  // Hessian of f times the direction V (same layout as W), analytic:
  //   d(grad_l)[V] = 2c ( dA_l^T E B_l^T + A_l^T dE B_l^T + A_l^T E dB_l^T ),
  //   A_l = W_{L:l+1}, B_l = W_{l-1:1}, dE = sum_k A_k V_k B_k, dA_l, dB_l the product rule.
  std::vector<Mat> hvp(const Mat& M, const std::vector<Mat>& V) const;
  void gd_step(const std::vector<Mat>& grad, double eta);

  // Flat parameter vectors (column-major per layer; only the diagonals for a diagonal network).
  int64_t num_params() const;
  Vec flatten(const std::vector<Mat>& layers) const;
  std::vector<Mat> unflatten(const Vec& x) const;
  Vec hvp_flat(const Mat& M, const Vec& v) const { return flatten(hvp(M, unflatten(v))); }

  int depth() const { return static_cast<int>(W_.size()); }
  int64_t dim() const { return W_.front().rows(); }
  bool diagonal() const { return diagonal_; }
  double loss_scale() const { return c_; }
  const std::vector<Mat>& weights() const { return W_; }
  std::vector<Mat>& weights() { return W_; }

 private:
  std::vector<Mat> W_;
  double c_;
  bool diagonal_;
};

// Lemma 1's Hessian eigenvalues at a balanced minimum, for the theory's loss (c = 1/2; multiply
// by 2c otherwise): self-interaction L s^(2-2/L), the sharpness when s = s_1; interaction of
// two target values sum_{l<L} (s_i^(1-(1+l)/L) s_j^(l/L))^2.
double lemma1_self(double s, int depth);
double lemma1_pair(double si, double sj, int depth);

}  // namespace lorascope
