#include "models/spectral_stats.h"

#include <ATen/core/grad_mode.h>  // at::NoGradGuard (not in <ATen/ATen.h> from LibTorch 2 on)

#include "util/eigen.h"

#include <algorithm>
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
  if (M.size(-2) <= M.size(-1)) return M;
  return std::get<1>(at::linalg_qr(M, "r"));
}

// Eigen path for small CPU float64 chains (the MF studies log every few steps, and ATen's
// per-call overhead on 5 x 5 problems would dominate the run). Same algorithm as below.
using RowMat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Mat = Eigen::MatrixXd;

bool small_cpu_double(const std::vector<at::Tensor>& f) {
  return std::all_of(f.begin(), f.end(), [](const at::Tensor& t) {
    return t.dim() == 2 && t.device().is_cpu() && t.scalar_type() == at::kDouble &&
           t.is_contiguous() && !t.requires_grad() && std::min(t.size(0), t.size(1)) <= 64;
  });
}

Mat eigen_compress_rows(const Mat& M) {
  if (M.rows() <= M.cols()) return M;
  Eigen::HouseholderQR<Mat> qr(M);
  return qr.matrixQR().topRows(M.cols()).triangularView<Eigen::Upper>();
}

at::Tensor eigen_chain_singular_values(const std::vector<at::Tensor>& f) {
  auto map = [](const at::Tensor& t) {
    return Mat(Eigen::Map<const RowMat>(t.data_ptr<double>(), t.size(0), t.size(1)));
  };
  Mat core = eigen_compress_rows(map(f.front()));
  if (f.size() > 1) {
    for (size_t i = 1; i + 1 < f.size(); ++i) core = core * map(f[i]);
    core = core * eigen_compress_rows(map(f.back()).transpose()).transpose();
  }
  Eigen::JacobiSVD<Mat> svd(core);  // values only
  const auto& s = svd.singularValues();
  auto out = at::empty({static_cast<int64_t>(s.size())}, at::kDouble);
  std::copy(s.data(), s.data() + s.size(), out.data_ptr<double>());
  return out;
}
}  // namespace

at::Tensor chain_singular_values(const std::vector<at::Tensor>& factors) {
  if (factors.empty()) throw std::invalid_argument("chain_singular_values: no factors");
  at::NoGradGuard no_grad;
  if (small_cpu_double(factors)) return eigen_chain_singular_values(factors);
  return chain_singular_values_reference(factors);
}

at::Tensor chain_singular_values_on_device(const std::vector<at::Tensor>& factors) {
  if (factors.empty()) throw std::invalid_argument("chain_singular_values: no factors");
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> f;
  f.reserve(factors.size());
  for (const auto& t : factors) f.push_back(t.detach().to(at::kDouble));
  if (f.size() == 1) return at::linalg_svdvals(compress_rows(f[0]));
  at::Tensor core = compress_rows(f.front());                  // (..., k0, r0)
  for (size_t i = 1; i + 1 < f.size(); ++i) core = at::matmul(core, f[i]);
  at::Tensor right = compress_rows(f.back().transpose(-2, -1)).transpose(-2, -1);  // (..., r, k1)
  core = at::matmul(core, right);
  return at::linalg_svdvals(core);
}

at::Tensor chain_singular_values_reference(const std::vector<at::Tensor>& factors) {
  return chain_singular_values_on_device(factors).cpu();
}

SpectralStats chain_stats(const std::vector<at::Tensor>& factors) {
  return stats_from_sv(to_vector(chain_singular_values(factors)));
}

SpectralStats matrix_stats(const at::Tensor& M) {
  return stats_from_sv(to_vector(chain_singular_values({M.detach()})));
}

}  // namespace lorascope
