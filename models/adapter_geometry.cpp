#include "models/adapter_geometry.h"

#include <ATen/core/grad_mode.h>  // at::NoGradGuard (not in <ATen/ATen.h> from LibTorch 2 on)
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "models/principal_angles.h"

namespace lorascope {

namespace {

constexpr double kFloat32Eps = 1.1920928955078125e-07;  // 2^-23
constexpr double kResidualTol = 1e-10;                   // Ritz residuals, relative to sigma_1
constexpr int64_t kDenseWidth = 768;

at::Tensor f64(const at::Tensor& t) { return t.detach().to(at::kDouble); }

// Orthonormal columns spanning M's part with singular values above abs_tol (m x rank).
at::Tensor range_above(const at::Tensor& M, double abs_tol) {
  if (M.size(1) == 0) return M;
  auto [U, S, Vh] = at::linalg_svd(M, /*full_matrices=*/false);
  const int64_t keep = (S > abs_tol).sum().item<int64_t>();
  return U.narrow(1, 0, keep);
}

// M minus its projection on span(Q) (orthonormal Q), twice ("twice is enough": Giraud et al. 2005).
at::Tensor project_out(const at::Tensor& Q, at::Tensor M) {
  if (Q.size(1) == 0) return M;
  for (int pass = 0; pass < 2; ++pass) M = M - at::matmul(Q, at::matmul(Q.t(), M));
  return M;
}

// An orthonormal basis of M's part outside span(Q), dropping directions below rtol * ||M||_2.
at::Tensor extend_basis(const at::Tensor& Q, const at::Tensor& M, double rtol) {
  if (M.size(1) == 0) return M;
  const double scale = at::linalg_matrix_norm(M, 2).item<double>();
  if (!(scale > 0)) return M.narrow(1, 0, 0);
  at::Tensor N = range_above(project_out(Q, M), rtol * scale);
  if (N.size(1) == 0) return N;
  // One more pass and a QR restore orthogonality to Q lost to rounding in the kept directions.
  return std::get<0>(at::linalg_qr(project_out(Q, N), "reduced"));
}

void check_factors(const at::Tensor& B, const at::Tensor& A, const char* who) {
  if (B.dim() != 2 || A.dim() != 2 || B.size(1) != A.size(0)) {
    throw std::invalid_argument(std::string(who) + ": expected B (m, r) and A (r, n), got " + c10::str(B.sizes()) +
                                " and " + c10::str(A.sizes()));
  }
}

}  // namespace

BaseSpectrum base_spectrum(const at::Tensor& W, at::ScalarType storage) {
  if (W.dim() != 2) throw std::invalid_argument("base_spectrum: expected a matrix, got " + c10::str(W.sizes()));
  if (storage != at::kDouble && storage != at::kFloat) {
    throw std::invalid_argument("base_spectrum: storage must be float64 or float32, got " + std::string(c10::toString(storage)));
  }
  at::NoGradGuard no_grad;
  auto [U, S, Vh] = at::linalg_svd(f64(W), /*full_matrices=*/false);
  return {U.to(storage), S, Vh.t().contiguous().to(storage)};
}

BaseSpectrum in_float64(const BaseSpectrum& base) { return {f64(base.U), f64(base.S), f64(base.V)}; }

LowRankSvd low_rank_svd(const at::Tensor& B_in, const at::Tensor& A_in, double scaling) {
  check_factors(B_in, A_in, "low_rank_svd");
  at::NoGradGuard no_grad;
  const at::Tensor B = f64(B_in), At = f64(A_in).t();
  auto [QB, RB] = at::linalg_qr(B, "reduced");   // (m, q1), (q1, r)
  auto [QA, RA] = at::linalg_qr(At, "reduced");  // (n, q2), (q2, r)
  const at::Tensor core = at::matmul(RB, RA.t()) * scaling;  // (q1, q2)
  auto [Uc, S, Vch] = at::linalg_svd(core, /*full_matrices=*/false);
  LowRankSvd out;
  out.U = at::matmul(QB, Uc);
  out.V = at::matmul(QA, Vch.t());
  out.S = S;
  const double s1 = S.numel() ? S[0].item<double>() : 0.0;
  const double tol = s1 * static_cast<double>(std::max(B.size(0), At.size(0))) * kFloat32Eps;
  out.rank = s1 > 0 ? (out.S > tol).sum().item<int64_t>() : 0;
  return out;
}

UpdatedTopSvd updated_top_svd(const BaseSpectrum& stored, const at::Tensor& B_in, const at::Tensor& A_in,
                              double scaling, int64_t k_asked, TopSvdSolver solver, bool vectors) {
  check_factors(B_in, A_in, "updated_top_svd");
  const BaseSpectrum base = in_float64(stored);
  const at::Tensor& U = base.U;  // (m, p)
  const at::Tensor& V = base.V;  // (n, p)
  const at::Tensor& S = base.S;  // (p)
  const int64_t m = U.size(0), n = V.size(0), p = S.size(0);
  if (B_in.size(0) != m || A_in.size(1) != n) {
    throw std::invalid_argument("updated_top_svd: factors " + c10::str(B_in.sizes()) + " x " +
                                c10::str(A_in.sizes()) + " do not fit a base of " + std::to_string(m) + " x " +
                                std::to_string(n));
  }
  at::NoGradGuard no_grad;
  const auto opts = U.options();
  const at::Tensor B = f64(B_in).to(U.device()), At = f64(A_in).t().to(U.device());  // (m, r), (n, r)
  const int64_t r = B.size(1);
  const int64_t k = std::max<int64_t>(0, std::min(k_asked, p));

  // The augmented bases [U Q1] and [V Q2] and K's low-rank factors F (d1 x r), G (d2 x r).
  const at::Tensor X = at::matmul(U.t(), B);   // (p, r)
  const at::Tensor Y = at::matmul(V.t(), At);  // (p, r)
  const at::Tensor Q1 = m > p ? extend_basis(U, B, 1e-12) : at::empty({m, 0}, opts);
  const at::Tensor Q2 = n > p ? extend_basis(V, At, 1e-12) : at::empty({n, 0}, opts);
  const at::Tensor F = at::cat({X, at::matmul(Q1.t(), B)}, 0);
  const at::Tensor G = at::cat({Y, at::matmul(Q2.t(), At)}, 0);
  const int64_t d2 = G.size(0);  // K is (p + r1) x d2
  const at::Tensor Sc = S.unsqueeze(1);
  const auto K_mul = [&](const at::Tensor& Z) {  // (d2, b) -> (d1, b)
    at::Tensor out = at::matmul(F, at::matmul(G.t(), Z)) * scaling;
    out.narrow(0, 0, p).add_(Sc * Z.narrow(0, 0, p));
    return out;
  };
  const auto KT_mul = [&](const at::Tensor& Z) {  // (d1, b) -> (d2, b)
    at::Tensor out = at::matmul(G, at::matmul(F.t(), Z)) * scaling;
    out.narrow(0, 0, p).add_(Sc * Z.narrow(0, 0, p));
    return out;
  };

  at::Tensor u, sigma, v;  // (d1, k), (k), (d2, k)
  int64_t krylov_dim = 0;
  const int64_t lead = std::min(p, k + r);
  const int64_t width = lead + r;
  // Auto: K is small enough (d2 <= kDenseWidth) that its dense SVD costs less than a Krylov
  // space that, for real weights' crowded top singular values, reaches about half of K's width
  // (all-MiniLM-L6-v2: about 190 of 392 for a residual of 1e-10).
  bool dense = solver == TopSvdSolver::kDense || k == 0 ||
               (solver == TopSvdSolver::kAuto && (d2 <= kDenseWidth || 2 * (width + r) > d2));
  if (!dense) {
    // Start: W's top k + r right singular directions and the update's row space.
    at::Tensor start = at::zeros({d2, lead}, opts);
    start.narrow(0, 0, lead).copy_(at::eye(lead, opts));
    at::Tensor basis = extend_basis(at::empty({d2, 0}, opts), at::cat({start, G}, 1), 1e-12);
    at::Tensor block = basis;
    at::Tensor KQ = K_mul(basis);
    // Rayleigh-Ritz costs O(d1 dim^2): done when the space has grown by half since the last
    // one, so its total cost stays a constant times the last one's.
    int64_t next_check = 0;
    bool invariant = false;
    // Each pass adds at least one direction or stops, so d2 + 1 passes bound the loop.
    for (int64_t pass = 0; pass <= d2; ++pass) {
      if (basis.size(1) >= next_check || invariant) {
        auto [Ut, St, Vth] = at::linalg_svd(KQ, /*full_matrices=*/false);
        const int64_t kk = std::min<int64_t>(k, St.size(0));
        sigma = St.narrow(0, 0, kk);
        u = Ut.narrow(1, 0, kk);
        v = at::matmul(basis, Vth.narrow(0, 0, kk).t());
        const double s1 = St.numel() ? St[0].item<double>() : 0.0;
        const at::Tensor residual = KT_mul(u) - v * sigma.unsqueeze(0);
        const double worst = kk ? at::linalg_vector_norm(residual, 2, {0}).max().item<double>() : 0.0;
        krylov_dim = basis.size(1);
        if (kk == k && worst <= kResidualTol * std::max(s1, 1e-300)) break;
        if (invariant) {  // span(basis) is invariant under K^T K, yet not converged: rounding
          dense = true;
          break;
        }
        next_check = basis.size(1) + std::max<int64_t>(width, basis.size(1) / 2);
      }
      if (solver == TopSvdSolver::kAuto && 2 * (basis.size(1) + block.size(1)) > d2) {
        dense = true;
        break;
      }
      block = extend_basis(basis, KT_mul(K_mul(block)), 1e-8);
      if (block.size(1) == 0) {  // the Ritz pairs of span(basis) are exact: one last check
        invariant = true;
        continue;
      }
      basis = at::cat({basis, block}, 1);
      KQ = at::cat({KQ, K_mul(block)}, 1);
    }
  }
  if (dense) {
    at::Tensor K = at::matmul(F, G.t()) * scaling;  // (d1, d2)
    K.narrow(0, 0, p).narrow(1, 0, p).add_(at::diag(S));
    auto [Uk, Sk, Vkh] = at::linalg_svd(K, /*full_matrices=*/false);
    sigma = Sk.narrow(0, 0, k);
    u = Uk.narrow(1, 0, k);
    v = Vkh.narrow(0, 0, k).t();
    krylov_dim = 0;
  }
  UpdatedTopSvd out;
  out.S = sigma.contiguous();
  out.base_cos = u.narrow(0, 0, p).contiguous();  // U_W^T [U_W Q1] u = u[:p], since Q1 is orthogonal to U_W
  out.krylov_dim = krylov_dim;
  if (vectors) {
    out.U = at::matmul(at::cat({U, Q1}, 1), u);
    out.V = at::matmul(at::cat({V, Q2}, 1), v);
  }
  return out;
}

Intruders intruder_dimensions(const UpdatedTopSvd& top, double epsilon) {
  Intruders out;
  const at::Tensor cos = top.base_cos.abs().amax(0).cpu();  // (k)
  const at::Tensor sv = top.S.cpu();
  for (int64_t i = 0; i < cos.size(0); ++i) {
    const double c = cos[i].item<double>(), s = sv[i].item<double>();
    out.max_cos.push_back(c);
    out.sv.push_back(s);
    if (c < epsilon) {
      out.indices.push_back(i);
      out.max_sv = std::max(out.max_sv, s);
    }
  }
  out.count = static_cast<int64_t>(out.indices.size());
  return out;
}

AdapterGeometry adapter_geometry(const BaseSpectrum& stored, const at::Tensor& B, const at::Tensor& A, double scaling,
                                 const GeometryOptions& options) {
  // One float64 copy of a float32 base, for this adapter only (updated_top_svd reuses it as is).
  const BaseSpectrum base = in_float64(stored);
  AdapterGeometry g;
  g.delta = low_rank_svd(B, A, scaling);
  const int64_t p = base.S.size(0);
  const int64_t k = std::min<int64_t>(p, options.base_k > 0 ? options.base_k : B.size(1));
  const at::Tensor L = g.delta.U.narrow(1, 0, g.delta.rank).to(base.U.device());
  const at::Tensor R = g.delta.V.narrow(1, 0, g.delta.rank).to(base.V.device());
  const at::Tensor Uk = base.U.narrow(1, 0, k), Vk = base.V.narrow(1, 0, k);
  g.angles_left = principal_angles(Uk, L);
  g.angles_right = principal_angles(Vk, R);
  g.align_left = grassmann_similarity(Uk, L);
  g.align_right = grassmann_similarity(Vk, R);
  const auto top = updated_top_svd(base, B, A, scaling, options.intruder_top_k, options.solver);
  g.intruders = intruder_dimensions(top, options.intruder_epsilon);
  g.krylov_dim = top.krylov_dim;
  return g;
}

SubspaceDrift subspace_drift(const LowRankSvd& before, const LowRankSvd& after) {
  return {principal_angles(before.U.narrow(1, 0, before.rank), after.U.narrow(1, 0, after.rank)),
          principal_angles(before.V.narrow(1, 0, before.rank), after.V.narrow(1, 0, after.rank))};
}

}  // namespace lorascope
