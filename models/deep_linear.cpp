#include "models/deep_linear.h"

#include <cmath>
#include <stdexcept>

namespace lorascope {

DeepInit parse_deep_init(const std::string& name) {
  if (name == "balanced") return DeepInit::Balanced;
  if (name == "unbalanced") return DeepInit::Unbalanced;
  if (name == "orthogonal") return DeepInit::Orthogonal;
  if (name == "gaussian") return DeepInit::Gaussian;
  throw std::invalid_argument("unknown init '" + name +
                              "' (expected balanced, unbalanced, orthogonal or gaussian)");
}

Mat random_orthogonal(int64_t d, std::mt19937_64& rng) {
  std::normal_distribution<double> normal;
  Mat G(d, d);
  for (int64_t j = 0; j < d; ++j)
    for (int64_t i = 0; i < d; ++i) G(i, j) = normal(rng);
  Eigen::HouseholderQR<Mat> qr(G);
  Mat Q = qr.householderQ();
  const Mat R = qr.matrixQR().triangularView<Eigen::Upper>();
  for (int64_t j = 0; j < d; ++j)
    if (R(j, j) < 0) Q.col(j) *= -1;  // makes Q Haar rather than biased by Householder signs
  return Q;
}

DeepLinear::DeepLinear(std::vector<Mat> W, double loss_scale, bool diagonal)
    : W_(std::move(W)), c_(loss_scale), diagonal_(diagonal) {
  if (W_.empty()) throw std::invalid_argument("DeepLinear: needs at least one layer");
  const auto d = W_.front().rows();
  for (const auto& w : W_) {
    if (w.rows() != d || w.cols() != d) throw std::invalid_argument("DeepLinear: layers must be d x d");
  }
}

DeepLinear DeepLinear::init(int64_t d, int depth, DeepInit init, double alpha, double loss_scale,
                            bool diagonal, std::mt19937_64& rng) {
  if (diagonal && (init == DeepInit::Orthogonal || init == DeepInit::Gaussian)) {
    throw std::invalid_argument("a diagonal network takes the balanced or unbalanced init");
  }
  std::vector<Mat> W;
  std::normal_distribution<double> normal;
  for (int l = 0; l < depth; ++l) {
    const bool top = l == depth - 1;
    if (top && init != DeepInit::Balanced) {
      W.push_back(Mat::Zero(d, d));
    } else if (init == DeepInit::Orthogonal) {
      W.push_back(alpha * random_orthogonal(d, rng));
    } else if (init == DeepInit::Gaussian) {
      Mat H(d, d);
      for (int64_t j = 0; j < d; ++j)
        for (int64_t i = 0; i < d; ++i) H(i, j) = normal(rng);
      W.push_back(alpha * H);
    } else {
      W.push_back(alpha * Mat::Identity(d, d));
    }
  }
  return DeepLinear(std::move(W), loss_scale, diagonal);
}

Mat DeepLinear::partial(int hi, int lo) const {
  const auto d = dim();
  if (hi < lo) return Mat::Identity(d, d);
  Mat P = W_[lo];
  for (int k = lo + 1; k <= hi; ++k) P = W_[k] * P;
  return P;
}

Mat DeepLinear::product() const { return partial(depth() - 1, 0); }

double DeepLinear::loss(const Mat& M) const { return c_ * (product() - M).squaredNorm(); }

double DeepLinear::loss_and_grad(const Mat& M, std::vector<Mat>& grad) const {
  const int L = depth();
  // suffix[l] = W_{L:l+1} (layers above l), prefix[l] = W_{l-1:1} (layers below l).
  std::vector<Mat> prefix(L), suffix(L);
  prefix[0] = Mat::Identity(dim(), dim());
  for (int l = 1; l < L; ++l) prefix[l] = W_[l - 1] * prefix[l - 1];
  suffix[L - 1] = Mat::Identity(dim(), dim());
  for (int l = L - 2; l >= 0; --l) suffix[l] = suffix[l + 1] * W_[l + 1];
  const Mat E = W_[L - 1] * prefix[L - 1] - M;  // (d, d)
  grad.resize(L);
  for (int l = 0; l < L; ++l) {
    grad[l] = (2 * c_) * suffix[l].transpose() * E * prefix[l].transpose();
    if (diagonal_) grad[l] = Mat(grad[l].diagonal().asDiagonal());
  }
  return c_ * E.squaredNorm();
}

std::vector<Mat> DeepLinear::hvp(const Mat& M, const std::vector<Mat>& V) const {
  const int L = depth();
  const Mat E = product() - M;
  // Directional derivative of W_hi ... W_lo along V (product rule, one factor replaced at a time).
  auto dpartial = [&](int hi, int lo) {
    Mat D = Mat::Zero(dim(), dim());
    for (int k = lo; k <= hi; ++k) D += partial(hi, k + 1) * V[k] * partial(k - 1, lo);
    return D;
  };
  const Mat dE = dpartial(L - 1, 0);
  std::vector<Mat> out(L);
  for (int l = 0; l < L; ++l) {
    const Mat A = partial(L - 1, l + 1), B = partial(l - 1, 0);
    const Mat dA = dpartial(L - 1, l + 1), dB = dpartial(l - 1, 0);
    out[l] = (2 * c_) * (dA.transpose() * E * B.transpose() + A.transpose() * dE * B.transpose() +
                         A.transpose() * E * dB.transpose());
    if (diagonal_) out[l] = Mat(out[l].diagonal().asDiagonal());
  }
  return out;
}

void DeepLinear::gd_step(const std::vector<Mat>& grad, double eta) {
  for (int l = 0; l < depth(); ++l) W_[l] -= eta * grad[l];
}

int64_t DeepLinear::num_params() const {
  const auto d = dim();
  return depth() * (diagonal_ ? d : d * d);
}

Vec DeepLinear::flatten(const std::vector<Mat>& layers) const {
  const auto d = dim(), per = diagonal_ ? d : d * d;
  Vec x(num_params());
  for (int l = 0; l < depth(); ++l) {
    if (diagonal_) {
      x.segment(l * per, per) = layers[l].diagonal();
    } else {
      x.segment(l * per, per) = Eigen::Map<const Vec>(layers[l].data(), per);
    }
  }
  return x;
}

std::vector<Mat> DeepLinear::unflatten(const Vec& x) const {
  const auto d = dim(), per = diagonal_ ? d : d * d;
  std::vector<Mat> layers(depth());
  for (int l = 0; l < depth(); ++l) {
    if (diagonal_) {
      layers[l] = Mat(x.segment(l * per, per).asDiagonal());
    } else {
      layers[l] = Eigen::Map<const Mat>(x.data() + l * per, d, d);
    }
  }
  return layers;
}

double lemma1_self(double s, int depth) { return depth * std::pow(s, 2.0 - 2.0 / depth); }

double lemma1_pair(double si, double sj, int depth) {
  double sum = 0;
  for (int l = 0; l < depth; ++l) {
    sum += std::pow(std::pow(si, 1.0 - (1.0 + l) / depth) * std::pow(sj, double(l) / depth), 2);
  }
  return sum;
}

}  // namespace lorascope
