#include "models/hessian_spectrum.h"

#include <algorithm>
#include <cmath>
#include <random>

namespace lorascope {

namespace {
Eigen::VectorXd random_unit(int64_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  Eigen::VectorXd v(n);
  for (int64_t i = 0; i < n; ++i) v(i) = normal(rng);
  return v / v.norm();
}
}  // namespace

std::vector<double> lanczos_top_k(const MatVec& op, int64_t n, int k, int iters, uint64_t seed,
                                  double tol) {
  const int m_max = static_cast<int>(std::min<int64_t>(iters, n));
  Eigen::MatrixXd Q(n, m_max);  // Lanczos basis, (n, m)
  std::vector<double> alpha, beta;
  Q.col(0) = random_unit(n, seed);
  std::vector<double> prev;
  for (int j = 0; j < m_max; ++j) {
    Eigen::VectorXd w = op(Q.col(j));
    alpha.push_back(Q.col(j).dot(w));
    // Full reorthogonalisation (twice): the bases here are small and the Ritz values must not
    // pick up ghost copies of the top eigenvalue.
    for (int pass = 0; pass < 2; ++pass) w -= Q.leftCols(j + 1) * (Q.leftCols(j + 1).transpose() * w);
    const double b = w.norm();
    const int m = j + 1;
    Eigen::MatrixXd T = Eigen::MatrixXd::Zero(m, m);
    for (int i = 0; i < m; ++i) {
      T(i, i) = alpha[i];
      if (i + 1 < m) T(i, i + 1) = T(i + 1, i) = beta[i];
    }
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(T, Eigen::EigenvaluesOnly);
    std::vector<double> ritz(es.eigenvalues().data(), es.eigenvalues().data() + m);
    std::sort(ritz.rbegin(), ritz.rend());
    ritz.resize(std::min<size_t>(ritz.size(), k));
    const double scale = std::max(1e-300, std::abs(ritz.front()));
    bool converged = m >= k && prev.size() == ritz.size();
    for (size_t i = 0; converged && i < ritz.size(); ++i) {
      converged = std::abs(ritz[i] - prev[i]) <= tol * scale;
    }
    // An invariant subspace (b ~ 0) holds exact eigenvalues: nothing more to find from this start.
    if (converged || b <= 1e-13 * scale || m == m_max) return ritz;
    prev = ritz;
    beta.push_back(b);
    Q.col(j + 1) = w / b;
  }
  return prev;
}

double power_top(const MatVec& op, int64_t n, int iters, uint64_t seed, double tol) {
  Eigen::VectorXd v = random_unit(n, seed);
  double lambda = 0;
  for (int it = 0; it < iters; ++it) {
    Eigen::VectorXd w = op(v);
    const double next = v.dot(w);
    const double norm = w.norm();
    if (norm == 0) return 0;
    v = w / norm;
    if (it > 0 && std::abs(next - lambda) <= tol * std::abs(next)) return next;
    lambda = next;
  }
  return lambda;
}

Eigen::MatrixXd dense_from_products(const MatVec& op, int64_t n) {
  Eigen::MatrixXd H(n, n);
  for (int64_t j = 0; j < n; ++j) H.col(j) = op(Eigen::VectorXd::Unit(n, j));
  return 0.5 * (H + H.transpose());
}

}  // namespace lorascope
