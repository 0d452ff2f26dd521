// LoRA on a pretrained two-factor model: Problem 2 of lora-learning-dynamics-matrix-factorization.md
//
//   L(A1, A2, B1, B2) = 1/2 || Y_ft - (W2 + B2 A2)(W1 + B1 A1) ||_F^2          (paper eq. (2))
//
//   W2: m x h, W1: h x n (frozen, pretrained), B2: m x r, A2: r x h, B1: h x r, A1: r x n.
//
// The pretrained model is Section 5.1's: Y_pre (m x n) Gaussian with SVD U_Y S V_Y^T (k =
// min(m, n) nonzero singular values), G a Haar-random h x h orthogonal matrix, and
//   W2 = scale * U_Y S^(1/2) G_k^T,   W1 = (1/scale) * G_k S^(1/2) V_Y^T,   G_k = G[:, :k],
// so W2 W1 = Y_pre exactly (Assumption 2.1). The paper writes W2 = 1.05 U_Y S^(1/2) G^T with G
// 100 x 100, which does not conform for m = 10; using the first k columns of G is the reading
// that satisfies Assumption 2.1. The fine-tuning target is Y_ft = Y_pre + sigma u v^T with (u, v)
// the top or the bottom singular pair of Y_pre (Sec. 5.1, App. H.1), and g = G[:, i] the
// matching column, so W2^T u = sigma_W2 g and W1 v = sigma_W1 g.
//
// Everything is float64 Eigen: the problem is 10 x 100 and GD runs tens of thousands of steps,
// where ATen's per-op dispatch would cost more than the arithmetic. Eigen types cross translation
// units here, which is safe because the whole build shares one -march (CMakeLists.txt).
#pragma once

#include "util/eigen.h"

#include <cstdint>
#include <random>
#include <string>

namespace lorascope {

// A seeded N(0, 1) source that gives the same numbers on every platform (Box-Muller on
// mt19937_64; std::normal_distribution differs between standard libraries).
class Gaussian {
 public:
  explicit Gaussian(uint64_t seed) : engine_(seed) {}
  double next();
  Eigen::MatrixXd matrix(int64_t rows, int64_t cols);  // filled column by column

 private:
  std::mt19937_64 engine_;
  bool has_spare_ = false;
  double spare_ = 0;
};

// Which singular pair of Y_pre the fine-tuning update Delta Y = sigma u v^T lies on.
enum class TargetPair { Top, Bottom };
TargetPair parse_target_pair(const std::string& name);  // "top" | "bottom"

struct PretrainedMFShape {
  int64_t m = 10, n = 10, h = 100;
  double scale = 1.05;  // W2 gets scale, W1 gets 1/scale: delta_w = sigma_W1 / sigma_W2 = 1/scale^2
  double sigma = 5.0;   // the singular value of Delta Y
  TargetPair pair = TargetPair::Top;
};

struct PretrainedMF {
  Eigen::MatrixXd Y_pre, Y_ft;  // (m, n)
  Eigen::MatrixXd W2;           // (m, h)
  Eigen::MatrixXd W1;           // (h, n)
  Eigen::MatrixXd U_Y, V_Y;     // (m, k), (n, k): singular vectors of Y_pre, descending
  Eigen::VectorXd S;            // (k): singular values of Y_pre
  Eigen::MatrixXd G;            // (h, h) orthogonal
  int64_t pair_index = 0;  // i: u = U_Y[:, i], v = V_Y[:, i], g = G[:, i]
  double sigma = 0;        // Delta Y = sigma u v^T
  double sigma_W2 = 0, sigma_W1 = 0;  // scale sqrt(S_i), sqrt(S_i) / scale

  Eigen::VectorXd u() const { return U_Y.col(pair_index); }
  Eigen::VectorXd v() const { return V_Y.col(pair_index); }
  Eigen::VectorXd g() const { return G.col(pair_index); }
  // Sec. 3.1's delta_w = sigma_W1 / sigma_W2 (< 1 for scale > 1); Theorem 4.1 writes the inverse
  // ratio under the same name, which contradicts its own "delta_w < 1 WLOG"; Sec. 3.1 is used.
  double delta_w() const { return sigma_W1 / sigma_W2; }
  int64_t m() const { return W2.rows(); }
  int64_t h() const { return W2.cols(); }
  int64_t n() const { return W1.cols(); }
};

// Draws Y_pre (m x n, column by column) and then G from gauss. Throws std::invalid_argument
// unless min(m, n) <= h.
PretrainedMF make_pretrained_mf(const PretrainedMFShape& shape, Gaussian& gauss);

struct LoraFactors {
  Eigen::MatrixXd B2;  // (m, r)
  Eigen::MatrixXd A2;  // (r, h)
  Eigen::MatrixXd B1;  // (h, r)
  Eigen::MatrixXd A1;  // (r, n)
};

enum class PretrainedLoraInit {
  Small,     // Sec. 2: A1, A2 entrywise N(0, alpha^2), B1 = B2 = 0
  Spectral,  // Sec. 4: A1 = G11 Sigma_A1 G12^T, A2 = G21 Sigma_A2 G22^T, B1 = B2 = 0
};
PretrainedLoraInit parse_pretrained_lora_init(const std::string& name);  // "small" | "spectral"

// Section 4's spectral initialization for rank(Delta Y) = 1 <= r <= min(n, h):
//   G12 = [v, V_perp] (n x r), G22 = [g, G_perp] (h x r), with V_perp the next r - 1 right
//   singular vectors of Y_pre (skipping v) and G_perp the matching columns of G; G11, G21 are
//   Haar-random r x r orthogonal; Sigma_A1, Sigma_A2 diagonal with N(0, alpha^2) entries.
// The paper calls G^S "the left singular vectors of W2" belonging to U_Y^S; W2 = U_Y S G^T, so
// they are its right singular vectors, the columns of G (a slip in the text). Its shapes
// "V_perp in R^{r x (n - r)}, G_perp in R^{r x (h - r)}" are likewise read as the n x (r - 1)
// and h x (r - 1) completions that make A1 (r x n) and A2 (r x h) conform.
// Throws std::invalid_argument for r < 1 or r > min(n, h).
LoraFactors init_lora(const PretrainedMF& mf, PretrainedLoraInit init, int64_t r, double alpha,
                      Gaussian& gauss);

// Loss (eq. (2)) and, when grad is given, its analytic gradients, with
//   P2 = W2 + B2 A2, P1 = W1 + B1 A1, R = P2 P1 - Y_ft:
//   dL/dB2 = R P1^T A2^T, dL/dA2 = B2^T R P1^T, dL/dB1 = P2^T R A1^T, dL/dA1 = B1^T P2^T R.
double pretrained_mf_loss(const PretrainedMF& mf, const LoraFactors& f, LoraFactors* grad = nullptr);

// Plain gradient descent with preallocated buffers (no allocation per step).
class PretrainedMFDescent {
 public:
  PretrainedMFDescent(const PretrainedMF& mf, const LoraFactors& f);
  // One step X <- X - lr dL/dX on all four factors; returns the loss before the step.
  double step(LoraFactors& f, double lr);

 private:
  const PretrainedMF& mf_;
  Eigen::MatrixXd P2_, P1_, R_, gP2_, gP1_, gB2_, gA2_, gB1_, gA1_;
};

// Figure 1's quantities. With Z1 = [B1; A1^T] ((h + n) x r), Z2 = [B2; A2^T] ((m + h) x r):
//   gamma_1 = [g; v]             (the eigenvector of H1 with eigenvalue +1, Claim 3.1)
//   U_{Z1}^S = the top left singular vector of Z1
//   one_minus_cos = 1 - |cos(gamma_1, U_{Z1}^S)|   (singular vectors have no sign, hence | |)
//   z1_norm, z2_norm = ||Z1||_2, ||Z2||_2 (spectral norms)
// one_minus_cos is computed as 1/2 || gamma_1/||gamma_1|| - s U ||^2 (s = sign of the inner
// product), which equals 1 - |cos| but keeps its digits down to 1e-30 where 1 - cos would
// cancel to 0 below 1e-16.
struct AlignmentStats {
  double one_minus_cos = 0, z1_norm = 0, z2_norm = 0;
};
AlignmentStats alignment_stats(const PretrainedMF& mf, const LoraFactors& f);

// The LoRA change of the end-to-end matrix, F = (W2 + B2 A2)(W1 + B1 A1) - Y_pre (eq. (4)).
Eigen::MatrixXd lora_update(const PretrainedMF& mf, const LoraFactors& f);

}  // namespace lorascope
