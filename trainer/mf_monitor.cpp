#include "trainer/mf_monitor.h"

#include <ATen/core/grad_mode.h>  // at::NoGradGuard (not in <ATen/ATen.h> from LibTorch 2 on)

#include <algorithm>
#include <cmath>

#include "models/spectral_stats.h"

namespace lorascope {

MFSnapshot mf_core_variables(const Factorization& f, const MFTarget& target) {
  at::NoGradGuard no_grad;
  const auto& F = f.factors();
  const auto U = target.U.to(F[0].options()), V = target.V.to(F[0].options());
  at::Tensor UtW = at::matmul(U.t(), F[0]);                      // (k, r)
  for (size_t i = 1; i < F.size(); ++i) UtW = at::matmul(UtW, F[i]);  // (k, n)
  const at::Tensor G = at::matmul(UtW, V).to(at::kDouble);       // (k, k)
  MFSnapshot s;
  s.d = to_vector(at::diagonal(G));
  const double g2 = G.pow(2).sum().item<double>();
  double d2 = 0;
  for (double x : s.d) d2 += x * x;
  s.off_diag = std::sqrt(std::max(0.0, g2 - d2));
  s.x_zperp = std::sqrt(std::max(0.0, UtW.to(at::kDouble).pow(2).sum().item<double>() - g2));
  return s;
}

namespace {
nlohmann::json stats_json(const SpectralStats& st) {
  return {{"sv", st.sv}, {"erank", st.erank}, {"stable_rank", st.stable_rank}, {"fro", st.fro}};
}
}  // namespace

nlohmann::json mf_spectral_record(const Factorization& f, const MFTarget& target,
                                  bool with_factors) {
  nlohmann::json rec = stats_json(chain_stats(f.factors()));
  const auto core = mf_core_variables(f, target);
  rec["d"] = core.d;
  rec["off_diag"] = core.off_diag;
  rec["x_zperp"] = core.x_zperp;
  if (with_factors) {
    nlohmann::json factors = nlohmann::json::array();
    for (const auto& F : f.factors()) factors.push_back(stats_json(matrix_stats(F)));
    rec["factors"] = factors;
  }
  return rec;
}

}  // namespace lorascope
