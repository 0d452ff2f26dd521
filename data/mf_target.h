// Matrix-factorization targets Y = U_k Sigma V_k^T (muon-lora-uniform-growth.md Sec. 3): seeded
// Haar-random orthonormal U_k (m x k), V_k (n x k) and a given spectrum Sigma, or all three
// read from a JSON file {"U": m x k, "sigma": [k], "V": n x k}.
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <vector>

namespace lorascope {

struct MFTarget {
  at::Tensor U;      // (m, k), orthonormal columns
  at::Tensor sigma;  // (k), descending
  at::Tensor V;      // (n, k), orthonormal columns
  at::Tensor Y;      // (m, n) = U diag(sigma) V^T

  int64_t rank() const { return sigma.size(0); }
  // 1/2 sum_{i>r} sigma_i^2: the loss of the best rank-r approximation (Eckart-Young).
  double best_rank_loss(int64_t r) const;
};

// Haar-distributed m x k matrix with orthonormal columns (QR of a Gaussian, signs fixed by R).
at::Tensor random_orthonormal(int64_t m, int64_t k, at::Generator& gen);

MFTarget make_target(int64_t m, int64_t n, const std::vector<double>& sigma, at::Generator& gen,
                     at::ScalarType dtype);
// Checks shapes (m, n), orthonormality to 1e-8 and a descending non-negative sigma.
MFTarget load_target(const std::string& path, int64_t m, int64_t n, at::ScalarType dtype);

}  // namespace lorascope
