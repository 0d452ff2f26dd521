#include "data/mf_target.h"

#include <stdexcept>

#include "data/matrix_json.h"

namespace lorascope {

double MFTarget::best_rank_loss(int64_t r) const {
  auto s = sigma.to(at::kDouble);
  if (r >= s.size(0)) return 0.0;
  return 0.5 * s.narrow(0, r, s.size(0) - r).pow(2).sum().item<double>();
}

at::Tensor random_orthonormal(int64_t m, int64_t k, at::Generator& gen) {
  auto G = at::randn({m, k}, gen, at::kDouble);
  auto [Q, R] = at::linalg_qr(G, "reduced");
  return Q * at::sign(at::diagonal(R)).unsqueeze(0);
}

namespace {
MFTarget assemble(at::Tensor U, at::Tensor sigma, at::Tensor V, at::ScalarType dtype) {
  MFTarget t;
  t.Y = at::matmul(U * sigma.unsqueeze(0), V.t()).to(dtype).contiguous();
  t.U = U.to(dtype);
  t.sigma = sigma.to(dtype);
  t.V = V.to(dtype);
  return t;
}
}  // namespace

MFTarget make_target(int64_t m, int64_t n, const std::vector<double>& sigma, at::Generator& gen,
                     at::ScalarType dtype) {
  const auto k = static_cast<int64_t>(sigma.size());
  if (k > std::min(m, n)) {
    throw std::invalid_argument("target: " + std::to_string(k) + " singular values do not fit a " +
                                std::to_string(m) + " x " + std::to_string(n) + " matrix");
  }
  auto U = random_orthonormal(m, k, gen);
  auto V = random_orthonormal(n, k, gen);
  auto s = at::tensor(sigma, at::kDouble);
  return assemble(U, s, V, dtype);
}

MFTarget load_target(const std::string& path, int64_t m, int64_t n, at::ScalarType dtype) {
  const auto j = read_json_file(path);
  for (const char* key : {"U", "sigma", "V"}) {
    if (!j.contains(key)) throw std::runtime_error(path + ": missing key \"" + key + "\"");
  }
  auto sigma = json_to_vector(j["sigma"], path + ": sigma");
  const int64_t k = sigma.size(0);
  auto U = json_to_matrix(j["U"], path + ": U", m, k);
  auto V = json_to_matrix(j["V"], path + ": V", n, k);
  auto s = sigma.data_ptr<double>();
  for (int64_t i = 0; i < k; ++i) {
    if (s[i] < 0 || (i > 0 && s[i] > s[i - 1])) {
      throw std::runtime_error(path + ": sigma: expected non-negative values in descending order");
    }
  }
  auto eye = at::eye(k, at::kDouble);
  for (auto [name, M] : {std::pair<const char*, at::Tensor>{"U", U}, {"V", V}}) {
    const double err = (at::matmul(M.t(), M) - eye).abs().max().item<double>();
    if (err > 1e-8) {
      throw std::runtime_error(path + ": " + name + ": expected orthonormal columns (max |" + name +
                               "^T " + name + " - I| = " + std::to_string(err) + ")");
    }
  }
  return assemble(U, sigma, V, dtype);
}

}  // namespace lorascope
