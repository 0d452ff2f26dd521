// Where a LoRA update delta W = s B A (B: m x r, A: r x n) sits relative to the frozen weight W
// (m x n) it modifies. W's thin SVD, W = U_W diag(S_W) V_W^T (p = min(m, n) triplets), is computed
// once per adapter (BaseSpectrum, O(m n p)); everything per log is thin QRs, products with U_W and
// V_W, and dense problems of size r or about p + r:
//
//  - Alignment: principal angles (models/principal_angles.h) between delta W's left (right)
//    singular subspace, rank(delta W) <= r dimensions, and the top-k left (right) singular
//    subspace of W; summarized by the normalized Grassmann similarity (mean cos^2).
//  - Intruder dimensions (Shuttleworth et al. 2024, "LoRA vs Full Fine-tuning: An Illusion of
//    Equivalence", §3): among the top-k left singular vectors u_i of W + delta W, those whose
//    largest |cosine| with every left singular vector of W is below epsilon. Defaults k = 10,
//    epsilon = 0.5 and the comparison on left vectors with all p of W's vectors are those of
//    PEFT's reduce_intruder_dimension (peft/tuners/lora/intruders.py, PEFT 0.21).
//  - Drift: principal angles between the column (row) spaces of two updates of one adapter.
//
// The top-k SVD of W + s B A from W's SVD (a rank-r update, as in Brand 2006): with
// X = U_W^T B (p x r), Q1 an orthonormal basis of B's part outside span(U_W) (present only when
// m > p), Y = V_W^T A^T and Q2 likewise for A^T,
//     W + s B A = [U_W Q1] K [V_W Q2]^T,   K = diag(S_W, 0) + s [X; Q1^T B] [Y; Q2^T A^T]^T,
// K of size about (p + r) x (p + r), diagonal plus rank r. Its top-k triplets come from a block
// Krylov space of K^T K (full reorthogonalization, Rayleigh-Ritz, stopped when every residual
// ||K^T u_i - sigma_i v_i|| <= 1e-10 sigma_1), started from W's top k + r right directions and the
// update's r, which is where the top of W + delta W lives; it falls back to a dense SVD of K when
// the Krylov space would exceed half of K's width, so the result is always converged. K up to
// 768 wide (MiniLM's 384 x 384 layers) is solved densely: real weights' top singular values are
// crowded, and the Krylov space then reaches about half of K's width anyway. The
// cosines with W's left vectors need no m-vectors at all: U_W^T [U_W Q1] z = z[:p].
// Cost per adapter and log: O((m + n) p r) for X and Y (the same order as forming delta W), plus
// O((m + n) r^2), and O(p d^2) for a Krylov space of dimension d or O((p + r)^3) for the dense
// SVD of K. A direct SVD of W + delta W would be O(m n p). BENCHMARKS.md has the times.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

namespace lorascope {

// W's thin SVD on W's device, computed in float64. storage = at::kFloat rounds U and V to float32
// (about half the memory of a cache of them; S stays float64): the functions below take either
// and compute in float64 (in_float64), so a float32 base only adds the rounding of its vectors,
// ~2^-24 per entry, to their results.
struct BaseSpectrum {
  at::Tensor U;  // (m, p)
  at::Tensor S;  // (p), descending, float64
  at::Tensor V;  // (n, p)
};
BaseSpectrum base_spectrum(const at::Tensor& W, at::ScalarType storage = at::kDouble);
// The same spectrum in float64: the tensors themselves when they are, else a copy.
BaseSpectrum in_float64(const BaseSpectrum& base);

// delta W = scaling * B A as U diag(S) V^T without forming it (thin QR of B and A^T, SVD of the
// q x q core, q = min(r, m, n)). rank = number of S_i > S_1 * max(m, n) * 2^-23: adapters are
// float32 at best, so smaller values are rounding, and their vectors mean nothing.
struct LowRankSvd {
  at::Tensor U;  // (m, q), float64
  at::Tensor S;  // (q), descending
  at::Tensor V;  // (n, q)
  int64_t rank = 0;
};
LowRankSvd low_rank_svd(const at::Tensor& B, const at::Tensor& A, double scaling);

enum class TopSvdSolver { kAuto, kKrylov, kDense };

// Top-k singular triplets of W + scaling * B A from W's SVD (see the header comment).
struct UpdatedTopSvd {
  at::Tensor S;         // (k) descending, k = min(k asked, p)
  at::Tensor base_cos;  // (p, k): U_W^T u_i, the cosines of u_i with each left singular vector of W
  at::Tensor U, V;      // (m, k), (n, k); only with vectors = true
  int64_t krylov_dim = 0;  // dimension of the Krylov space used; 0 when K was solved densely
};
UpdatedTopSvd updated_top_svd(const BaseSpectrum& base, const at::Tensor& B, const at::Tensor& A,
                              double scaling, int64_t k, TopSvdSolver solver = TopSvdSolver::kAuto,
                              bool vectors = false);

struct Intruders {
  int64_t count = 0;
  double max_sv = 0;             // largest singular value of W + delta W among intruders (0: none)
  std::vector<int64_t> indices;  // their positions among the top k (0-based)
  std::vector<double> max_cos;   // for each of the top k: max_j |cos(u_i, u_j(W))|
  std::vector<double> sv;        // the top k singular values of W + delta W
};
Intruders intruder_dimensions(const UpdatedTopSvd& top, double epsilon);

struct GeometryOptions {
  int64_t base_k = 0;              // W's top-k subspaces for the alignment; 0: the adapter's r
  int64_t intruder_top_k = 10;     // PEFT's top_k
  double intruder_epsilon = 0.5;   // PEFT's threshold_epsilon
  TopSvdSolver solver = TopSvdSolver::kAuto;
};

struct AdapterGeometry {
  LowRankSvd delta;
  at::Tensor angles_left, angles_right;  // radians, ascending, min(rank, k) each
  double align_left = 0, align_right = 0;  // mean cos^2 of those angles (NaN when rank is 0)
  Intruders intruders;
  int64_t krylov_dim = 0;
};
AdapterGeometry adapter_geometry(const BaseSpectrum& base, const at::Tensor& B, const at::Tensor& A,
                                 double scaling, const GeometryOptions& options);

// Principal angles between the column spaces (left) and row spaces (right) of two updates of
// the same adapter, each restricted to its numerically nonzero part.
struct SubspaceDrift {
  at::Tensor left, right;  // radians, ascending
};
SubspaceDrift subspace_drift(const LowRankSvd& before, const LowRankSvd& after);

}  // namespace lorascope
