// Spectral summaries of matrices and of low-rank products, used by every monitor.
//
// The singular values of a product W = F_0 F_1 ... F_{L-1} (F_0: m x r, F_{L-1}: r x n, r small)
// come from thin QR of the outer factors, F_0 = Q_0 R_0 and F_{L-1}^T = Q_1 R_1, and an SVD of
// the r x r core R_0 F_1 ... F_{L-2} R_1^T: W = Q_0 core Q_1^T with orthonormal Q's, so the
// singular values agree and the m x n product is never formed.
#pragma once

#include <ATen/ATen.h>

#include <vector>

namespace lorascope {

struct SpectralStats {
  std::vector<double> sv;   // descending
  double erank = 0;         // exp(-sum p_i log p_i), p_i = sv_i / sum(sv)  (Roy & Vetterli 2007)
  double stable_rank = 0;   // ||W||_F^2 / sigma_1^2
  double fro = 0;           // ||W||_F
};

SpectralStats stats_from_sv(std::vector<double> sv);
double effective_rank(const std::vector<double>& sv);

// Singular values (descending, float64 on the CPU) of the chain product, without forming it.
// Small CPU float64 chains take an Eigen path; chain_singular_values_reference() is the same
// algorithm in ATen ops (any device or dtype), which tests compare it with.
at::Tensor chain_singular_values(const std::vector<at::Tensor>& factors);
at::Tensor chain_singular_values_reference(const std::vector<at::Tensor>& factors);
// The same on the factors' device, float64, batched over leading dimensions (factors of shape
// (..., m, r), (..., r, n)): all adapters of one shape in a few kernel launches.
at::Tensor chain_singular_values_on_device(const std::vector<at::Tensor>& factors);
SpectralStats chain_stats(const std::vector<at::Tensor>& factors);
// Stats of one explicit matrix (a factor).
SpectralStats matrix_stats(const at::Tensor& M);

std::vector<double> to_vector(const at::Tensor& t);

}  // namespace lorascope
