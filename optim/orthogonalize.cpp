#include "optim/orthogonalize.h"

#include <algorithm>
#include <limits>
#include <stdexcept>

#include "optim/polar_express.h"
#include "optim/gram_newton_schulz.h"
#include "optim/small_matrix.h"
#include "optim/thin_polar.h"

namespace lorascope {

OrthoKind parse_ortho_kind(const std::string& name) {
  if (name == "exact") return OrthoKind::Exact;
  if (name == "smoothed") return OrthoKind::Smoothed;
  if (name == "newton_schulz") return OrthoKind::NewtonSchulz;
  if (name == "thin_exact") return OrthoKind::ThinExact;
  if (name == "polar_express") return OrthoKind::PolarExpress;
  throw std::invalid_argument("expected one of exact, smoothed, newton_schulz, thin_exact, polar_express, got \"" +
                              name + "\"");
}

std::string to_string(OrthoKind kind) {
  switch (kind) {
    case OrthoKind::Exact: return "exact";
    case OrthoKind::Smoothed: return "smoothed";
    case OrthoKind::NewtonSchulz: return "newton_schulz";
    case OrthoKind::ThinExact: return "thin_exact";
    case OrthoKind::PolarExpress: return "polar_express";
  }
  return "?";
}

double zero_sv_tolerance(int64_t rows, int64_t cols, at::ScalarType dtype) {
  const double eps = dtype == at::kDouble ? std::numeric_limits<double>::epsilon()
                                          : std::numeric_limits<float>::epsilon();
  return static_cast<double>(std::max(rows, cols)) * eps;
}

namespace {

// U f(S) V^T through a thin SVD, batched over leading dimensions.
at::Tensor spectral_map_reference(const at::Tensor& M, double beta) {
  auto [U, S, Vh] = at::linalg_svd(M, /*full_matrices=*/false);
  const auto tol = zero_sv_tolerance(M.size(-2), M.size(-1), M.scalar_type());
  auto s_max = S.narrow(-1, 0, 1);  // (..., 1): singular values come sorted descending
  auto keep = (S > s_max * tol) & (S > 0);
  auto f = at::where(keep, S / at::sqrt(S * S + beta), at::zeros_like(S));
  return at::matmul(U * f.unsqueeze(-2), Vh);
}

}  // namespace

at::Tensor orthogonalize_exact(const at::Tensor& M) { return spectral_map_reference(M, 0.0); }

at::Tensor orthogonalize_smoothed(const at::Tensor& M, double beta) {
  if (beta < 0) throw std::invalid_argument("orthogonalize_smoothed: beta must be >= 0");
  return spectral_map_reference(M, beta);
}

at::Tensor newton_schulz(const at::Tensor& M, int steps, double eps) {
  TORCH_CHECK(M.dim() >= 2, "newton_schulz: expected a matrix or a batch of matrices");
  const double a = 3.4445, b = -4.7750, c = 2.0315;
  // bf16 on CUDA as in practical Muon; CPU keeps float32/64 (CPU bf16 matmuls are slow and
  // would only add error).
  const bool tall = M.size(-2) > M.size(-1);
  auto X = M.reshape({-1, M.size(-2), M.size(-1)});  // one batch dimension for bmm
  if (tall) X = X.transpose(-2, -1);
  X = M.is_cuda() ? X.to(at::kBFloat16) : X.clone();
  X = X / (at::linalg_vector_norm(X, 2, {-2, -1}, /*keepdim=*/true) + eps);
  // Three fused products per iteration: A = X X^T, B = b A + c A A, X = a X + B X.
  for (int k = 0; k < steps; ++k) {
    auto A = at::bmm(X, X.transpose(-2, -1));
    auto B = at::baddbmm(A, A, A, /*beta=*/b, /*alpha=*/c);
    X = at::baddbmm(X, B, X, /*beta=*/a, /*alpha=*/1.0);
  }
  if (tall) X = X.transpose(-2, -1);
  return X.to(M.scalar_type()).reshape(M.sizes()).contiguous();
}

namespace {

// A CPU batch of small matrices: the Eigen kernel on each (as for a single matrix).
template <typename Kernel>
at::Tensor per_matrix_cpu(const at::Tensor& M, Kernel kernel) {
  auto flat = M.reshape({-1, M.size(-2), M.size(-1)}).contiguous();
  auto out = at::empty_like(flat);
  for (int64_t k = 0; k < flat.size(0); ++k) {
    auto slot = out.select(0, k);
    kernel(flat.select(0, k), slot);
  }
  return out.reshape(M.sizes());
}

bool small_cpu_batch(const at::Tensor& M) {
  if (M.dim() <= 2 || M.numel() == 0) return false;
  // eligible() looks at one matrix: dtype, device and the smaller side.
  return small::eligible(at::empty({M.size(-2), M.size(-1)}, M.options()));
}

}  // namespace

at::Tensor orthogonalize(const at::Tensor& M, const OrthoOptions& options) {
  const bool fast = small::eligible(M);
  switch (options.kind) {
    case OrthoKind::Exact:
    case OrthoKind::Smoothed: {
      const double beta = options.kind == OrthoKind::Exact ? 0.0 : options.beta;
      if (beta < 0) throw std::invalid_argument("orthogonalize: beta must be >= 0");
      if (small_cpu_batch(M)) {
        return per_matrix_cpu(M, [&](const at::Tensor& m, at::Tensor& o) {
          small::spectral_map(m, beta, o);
        });
      }
      if (!fast) return spectral_map_reference(M, beta);
      auto out = at::empty_like(M, at::MemoryFormat::Contiguous);
      small::spectral_map(M, beta, out);
      return out;
    }
    case OrthoKind::NewtonSchulz: {
      auto kernel = [&](const at::Tensor& m, at::Tensor& o) {
        if (gram_newton_schulz_applies(m)) {
          gram_newton_schulz(m, options.ns_steps, options.ns_eps, o);
        } else {
          small::newton_schulz(m, options.ns_steps, options.ns_eps, o);
        }
      };
      if (small_cpu_batch(M)) return per_matrix_cpu(M, kernel);
      if (!fast) return newton_schulz(M, options.ns_steps, options.ns_eps);
      auto out = at::empty_like(M, at::MemoryFormat::Contiguous);
      kernel(M, out);
      return out;
    }
    case OrthoKind::ThinExact: return orthogonalize_thin(M);
    case OrthoKind::PolarExpress: return polar_express(M, options.ns_steps);
  }
  throw std::logic_error("orthogonalize: unknown kind");
}

}  // namespace lorascope
