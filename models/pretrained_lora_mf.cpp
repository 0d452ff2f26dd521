#include "models/pretrained_lora_mf.h"

#include "util/eigen.h"

#include <cmath>
#include <stdexcept>

namespace lorascope {

using Eigen::MatrixXd;
using Eigen::VectorXd;

double Gaussian::next() {
  if (has_spare_) {
    has_spare_ = false;
    return spare_;
  }
  // 53-bit uniforms in (0, 1]: log never sees 0.
  auto uniform = [&] { return (static_cast<double>(engine_() >> 11) + 1.0) * 0x1.0p-53; };
  const double r = std::sqrt(-2.0 * std::log(uniform()));
  const double theta = 2.0 * M_PI * uniform();
  spare_ = r * std::sin(theta);
  has_spare_ = true;
  return r * std::cos(theta);
}

MatrixXd Gaussian::matrix(int64_t rows, int64_t cols) {
  MatrixXd M(rows, cols);
  for (int64_t j = 0; j < cols; ++j) {
    for (int64_t i = 0; i < rows; ++i) M(i, j) = next();
  }
  return M;
}

TargetPair parse_target_pair(const std::string& name) {
  if (name == "top") return TargetPair::Top;
  if (name == "bottom") return TargetPair::Bottom;
  throw std::invalid_argument("expected one of top, bottom, got \"" + name + "\"");
}

PretrainedLoraInit parse_pretrained_lora_init(const std::string& name) {
  if (name == "small") return PretrainedLoraInit::Small;
  if (name == "spectral") return PretrainedLoraInit::Spectral;
  throw std::invalid_argument("expected one of small, spectral, got \"" + name + "\"");
}

namespace {

// Haar-distributed orthogonal matrix: QR of a Gaussian with R's diagonal made positive.
MatrixXd random_orthogonal(int64_t n, Gaussian& gauss) {
  Eigen::HouseholderQR<MatrixXd> qr(gauss.matrix(n, n));
  MatrixXd Q = qr.householderQ();
  const MatrixXd& QR = qr.matrixQR();
  for (int64_t j = 0; j < n; ++j) {
    if (QR(j, j) < 0) Q.col(j) *= -1.0;
  }
  return Q;
}

// Column indices [i, then the first r - 1 others in order]: the basis G12 / G22 is built from.
std::vector<int64_t> pair_first(int64_t i, int64_t r, int64_t k) {
  std::vector<int64_t> idx = {i};
  for (int64_t j = 0; j < k && static_cast<int64_t>(idx.size()) < r; ++j) {
    if (j != i) idx.push_back(j);
  }
  return idx;
}

}  // namespace

PretrainedMF make_pretrained_mf(const PretrainedMFShape& s, Gaussian& gauss) {
  const int64_t k = std::min(s.m, s.n);
  if (s.m < 1 || s.n < 1 || k > s.h) {
    throw std::invalid_argument("pretrained mf: expected 1 <= min(m, n) <= h, got m = " +
                                std::to_string(s.m) + ", n = " + std::to_string(s.n) +
                                ", h = " + std::to_string(s.h));
  }
  PretrainedMF mf;
  mf.Y_pre = gauss.matrix(s.m, s.n);
  Eigen::JacobiSVD<MatrixXd> svd(mf.Y_pre, Eigen::ComputeThinU | Eigen::ComputeThinV);
  mf.U_Y = svd.matrixU();  // (m, k)
  mf.V_Y = svd.matrixV();  // (n, k)
  mf.S = svd.singularValues();
  mf.G = random_orthogonal(s.h, gauss);

  const VectorXd root = mf.S.cwiseSqrt();
  const auto Gk = mf.G.leftCols(k);                                      // (h, k)
  mf.W2 = s.scale * mf.U_Y * root.asDiagonal() * Gk.transpose();         // (m, h)
  mf.W1 = (1.0 / s.scale) * Gk * root.asDiagonal() * mf.V_Y.transpose();  // (h, n)

  mf.pair_index = s.pair == TargetPair::Top ? 0 : k - 1;
  mf.sigma = s.sigma;
  mf.sigma_W2 = s.scale * root(mf.pair_index);
  mf.sigma_W1 = root(mf.pair_index) / s.scale;
  mf.Y_ft = mf.Y_pre + s.sigma * mf.u() * mf.v().transpose();
  return mf;
}

LoraFactors init_lora(const PretrainedMF& mf, PretrainedLoraInit init, int64_t r, double alpha,
                      Gaussian& gauss) {
  const int64_t m = mf.m(), h = mf.h(), n = mf.n(), k = mf.S.size();
  LoraFactors f;
  f.B2 = MatrixXd::Zero(m, r);
  f.B1 = MatrixXd::Zero(h, r);
  if (init == PretrainedLoraInit::Small) {
    if (r < 1) throw std::invalid_argument("lora init: expected rank >= 1");
    f.A1 = alpha * gauss.matrix(r, n);
    f.A2 = alpha * gauss.matrix(r, h);
    return f;
  }
  if (r < 1 || r > k) {
    throw std::invalid_argument("spectral init: expected 1 <= rank <= min(m, n) = " +
                                std::to_string(k) + ", got " + std::to_string(r));
  }
  const auto idx = pair_first(mf.pair_index, r, k);
  MatrixXd G12(n, r), G22(h, r);
  for (int64_t j = 0; j < r; ++j) {
    G12.col(j) = mf.V_Y.col(idx[j]);
    G22.col(j) = mf.G.col(idx[j]);
  }
  const MatrixXd G11 = random_orthogonal(r, gauss), G21 = random_orthogonal(r, gauss);
  const VectorXd s1 = alpha * gauss.matrix(r, 1), s2 = alpha * gauss.matrix(r, 1);
  f.A1 = G11 * s1.asDiagonal() * G12.transpose();  // (r, n)
  f.A2 = G21 * s2.asDiagonal() * G22.transpose();  // (r, h)
  return f;
}

double pretrained_mf_loss(const PretrainedMF& mf, const LoraFactors& f, LoraFactors* grad) {
  const MatrixXd P2 = mf.W2 + f.B2 * f.A2;  // (m, h)
  const MatrixXd P1 = mf.W1 + f.B1 * f.A1;  // (h, n)
  const MatrixXd R = P2 * P1 - mf.Y_ft;     // (m, n)
  if (grad) {
    const MatrixXd gP2 = R * P1.transpose();  // (m, h) = dL/dP2
    const MatrixXd gP1 = P2.transpose() * R;  // (h, n) = dL/dP1
    grad->B2 = gP2 * f.A2.transpose();
    grad->A2 = f.B2.transpose() * gP2;
    grad->B1 = gP1 * f.A1.transpose();
    grad->A1 = f.B1.transpose() * gP1;
  }
  return 0.5 * R.squaredNorm();
}

PretrainedMFDescent::PretrainedMFDescent(const PretrainedMF& mf, const LoraFactors& f)
    : mf_(mf),
      P2_(mf.m(), mf.h()),
      P1_(mf.h(), mf.n()),
      R_(mf.m(), mf.n()),
      gP2_(mf.m(), mf.h()),
      gP1_(mf.h(), mf.n()),
      gB2_(f.B2.rows(), f.B2.cols()),
      gA2_(f.A2.rows(), f.A2.cols()),
      gB1_(f.B1.rows(), f.B1.cols()),
      gA1_(f.A1.rows(), f.A1.cols()) {}

double PretrainedMFDescent::step(LoraFactors& f, double lr) {
  P2_ = mf_.W2;
  P2_.noalias() += f.B2 * f.A2;
  P1_ = mf_.W1;
  P1_.noalias() += f.B1 * f.A1;
  R_ = -mf_.Y_ft;
  R_.noalias() += P2_ * P1_;
  const double loss = 0.5 * R_.squaredNorm();
  gP2_.noalias() = R_ * P1_.transpose();
  gP1_.noalias() = P2_.transpose() * R_;
  // All four gradients from the same point before any factor moves (simultaneous GD).
  gB2_.noalias() = gP2_ * f.A2.transpose();
  gA2_.noalias() = f.B2.transpose() * gP2_;
  gB1_.noalias() = gP1_ * f.A1.transpose();
  gA1_.noalias() = f.B1.transpose() * gP1_;
  f.B2 -= lr * gB2_;
  f.A2 -= lr * gA2_;
  f.B1 -= lr * gB1_;
  f.A1 -= lr * gA1_;
  return loss;
}

AlignmentStats alignment_stats(const PretrainedMF& mf, const LoraFactors& f) {
  const int64_t h = mf.h(), n = mf.n(), m = mf.m();
  const int64_t r = f.A1.rows();
  MatrixXd Z1(h + n, r), Z2(m + h, r);
  Z1 << f.B1, f.A1.transpose();
  Z2 << f.B2, f.A2.transpose();
  Eigen::JacobiSVD<MatrixXd> svd1(Z1, Eigen::ComputeThinU);
  Eigen::JacobiSVD<MatrixXd> svd2(Z2);
  VectorXd gamma(h + n);
  gamma << mf.g(), mf.v();
  gamma.normalize();
  const VectorXd U = svd1.matrixU().col(0);
  const double s = gamma.dot(U) >= 0 ? 1.0 : -1.0;
  AlignmentStats a;
  a.one_minus_cos = 0.5 * (gamma - s * U).squaredNorm();
  a.z1_norm = svd1.singularValues()(0);
  a.z2_norm = svd2.singularValues()(0);
  return a;
}

MatrixXd lora_update(const PretrainedMF& mf, const LoraFactors& f) {
  return (mf.W2 + f.B2 * f.A2) * (mf.W1 + f.B1 * f.A1) - mf.Y_pre;
}

}  // namespace lorascope
