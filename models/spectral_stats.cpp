#include "models/spectral_stats.h"

#include <cmath>
#include <numeric>
#include <stdexcept>

namespace lorascope {

double effective_rank(const std::vector<double>& sv) {
  const double total = std::accumulate(sv.begin(), sv.end(), 0.0);
  if (!(total > 0)) return 0.0;
  double entropy = 0.0;
  for (double s : sv) {
    const double p = s / total;
    if (p > 0) entropy -= p * std::log(p);
  }
  return std::exp(entropy);
}

SpectralStats stats_from_sv(std::vector<double> sv) {
  SpectralStats st;
  double sq = 0.0;
  for (double s : sv) sq += s * s;
  st.fro = std::sqrt(sq);
  st.stable_rank = (!sv.empty() && sv[0] > 0) ? sq / (sv[0] * sv[0]) : 0.0;
  st.erank = effective_rank(sv);
  st.sv = std::move(sv);
  return st;
}

std::vector<double> to_vector(const at::Tensor& t) {
  auto c = t.detach().to(at::kCPU, at::kDouble).contiguous();
  const double* p = c.data_ptr<double>();
  return std::vector<double>(p, p + c.numel());
}

namespace {
// R factor of the thin QR when it is smaller than M (tall M); M itself otherwise.
at::Tensor compress_rows(const at::Tensor& M) {
  if (M.size(0) <= M.size(1)) return M;
  return std::get<1>(at::linalg_qr(M, "r"));
}
}  // namespace

at::Tensor chain_singular_values(const std::vector<at::Tensor>& factors) {
  if (factors.empty()) throw std::invalid_argument("chain_singular_values: no factors");
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> f;
  f.reserve(factors.size());
  for (const auto& t : factors) f.push_back(t.detach().to(at::kDouble));
  if (f.size() == 1) return at::linalg_svdvals(f[0]).cpu();
  at::Tensor core = compress_rows(f.front());                  // (k0, r0)
  for (size_t i = 1; i + 1 < f.size(); ++i) core = at::matmul(core, f[i]);
  at::Tensor right = compress_rows(f.back().t()).t();          // (r, k1)
  core = at::matmul(core, right);
  return at::linalg_svdvals(core).cpu();
}

SpectralStats chain_stats(const std::vector<at::Tensor>& factors) {
  return stats_from_sv(to_vector(chain_singular_values(factors)));
}

SpectralStats matrix_stats(const at::Tensor& M) {
  at::NoGradGuard no_grad;
  return stats_from_sv(to_vector(at::linalg_svdvals(M.detach().to(at::kDouble))));
}

}  // namespace lorascope
