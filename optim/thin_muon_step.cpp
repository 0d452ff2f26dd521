#include "optim/thin_muon_step.h"

#include <ATen/Parallel.h>

#include <type_traits>
#include <vector>

#include "optim/gram_newton_schulz.h"
#include "optim/thin_factor_kernels.h"

namespace lorascope {
namespace {

constexpr int64_t kGrain = 1 << 15;  // elements per task of the element-wise passes

// Work memory per thread, grown on demand and kept: allocating it per step would fault fresh
// pages in for every factor where glibc maps large blocks.
template <typename T>
T* workspace(int64_t numel) {
  thread_local std::vector<T> buffer;
  if (buffer.size() < static_cast<size_t>(numel)) buffer.resize(static_cast<size_t>(numel));
  return buffer.data();
}

// The two element-wise passes, compiled for AVX-512 and AVX2 beside the portable build and
// picked at load time (GCC's target_clones): at the long side's sizes they run from L2 and
// DRAM, and SSE2 code left half of their bandwidth unused.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define LORASCOPE_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define LORASCOPE_VECTOR_CLONES
#endif

// M <- G + mu M (M <- G when fresh) and, for Nesterov, D = G + mu M.
template <typename T>
inline __attribute__((always_inline)) void momentum_pass_impl(const T* g, T* m, T* d, T mu, bool fresh,
                                                              int64_t begin, int64_t end) {
  if (fresh) {
    for (int64_t i = begin; i < end; ++i) m[i] = g[i];
  } else {
    for (int64_t i = begin; i < end; ++i) m[i] = g[i] + mu * m[i];
  }
  if (d) {
    for (int64_t i = begin; i < end; ++i) d[i] = g[i] + mu * m[i];
  }
}

// W <- keep W - rate U.
template <typename T>
inline __attribute__((always_inline)) void decay_update_impl(T* p, const T* u, T keep, T rate, int64_t begin,
                                                             int64_t end) {
  for (int64_t i = begin; i < end; ++i) p[i] = keep * p[i] - rate * u[i];
}

LORASCOPE_VECTOR_CLONES void momentum_pass(const float* g, float* m, float* d, float mu, bool fresh, int64_t begin,
                                           int64_t end) {
  momentum_pass_impl(g, m, d, mu, fresh, begin, end);
}
LORASCOPE_VECTOR_CLONES void momentum_pass(const double* g, double* m, double* d, double mu, bool fresh,
                                           int64_t begin, int64_t end) {
  momentum_pass_impl(g, m, d, mu, fresh, begin, end);
}
LORASCOPE_VECTOR_CLONES void decay_update(float* p, const float* u, float keep, float rate, int64_t begin,
                                          int64_t end) {
  decay_update_impl(p, u, keep, rate, begin, end);
}
LORASCOPE_VECTOR_CLONES void decay_update(double* p, const double* u, double keep, double rate, int64_t begin,
                                          int64_t end) {
  decay_update_impl(p, u, keep, rate, begin, end);
}

// The kernels of thin_factor_kernels.h where they apply (float32, r in {8, 16, 32}): direction
// and float64 Gram matrix in one pass, then W <- keep W - rate Q D in one pass.
bool fast_step(float* p, const float* g, float* m, bool fresh, int64_t r, int64_t n, bool wide, const MuonOptions& o,
               float keep, float rate) {
  if (!thin_factor_kernels_support(r)) return false;
  ThinMomentum mom;
  mom.enabled = o.momentum != 0.0;
  mom.nesterov = o.nesterov;
  mom.fresh = fresh;
  mom.mu = static_cast<float>(o.momentum);
  float* d = mom.enabled && mom.nesterov ? workspace<float>(r * n) : nullptr;
  std::vector<double> gram(r * r), q(r * r);
  thin_direction_gram(g, m, d, mom, r, n, wide, gram.data());
  gram_newton_schulz_polynomial(gram.data(), r, o.ortho.ns_steps, o.ortho.ns_eps, q.data());
  const std::vector<float> qf(q.begin(), q.end());
  thin_decayed_update(p, qf.data(), !mom.enabled ? g : mom.nesterov ? d : m, r, n, wide, keep, rate);
  return true;
}

template <typename T>
void step(T* p, const T* g, T* m, bool fresh_momentum, int64_t rows, int64_t cols, const MuonOptions& o,
          double lr_step, double decay) {
  const bool wide = rows <= cols;
  const int64_t r = wide ? rows : cols, n = wide ? cols : rows;
  const T keep = static_cast<T>(decay), rate = static_cast<T>(lr_step);
  if constexpr (std::is_same_v<T, float>) {
    if (fast_step(p, g, m, fresh_momentum, r, n, wide, o, keep, rate)) return;
  }
  // Otherwise: one element-wise pass, Newton-Schulz in the Gram form (its own GEMMs), one pass.
  const int64_t numel = rows * cols;
  T* work = workspace<T>(3 * numel);
  T *d = work, *u = work + numel, *scratch = work + 2 * numel;  // direction, NS(direction), restart
  const T* direction = g;
  if (o.momentum != 0.0) {
    const T mu = static_cast<T>(o.momentum);
    T* nesterov_out = o.nesterov ? d : nullptr;
    at::parallel_for(0, numel, kGrain, [&](int64_t begin, int64_t end) {
      momentum_pass(g, m, nesterov_out, mu, fresh_momentum, begin, end);
    });
    direction = o.nesterov ? d : m;
  }
  gram_newton_schulz_view(direction, u, scratch, r, n, wide, o.ortho.ns_steps, o.ortho.ns_eps);
  at::parallel_for(0, numel, kGrain, [&](int64_t begin, int64_t end) { decay_update(p, u, keep, rate, begin, end); });
}

}  // namespace

bool thin_muon_step_applies(const at::Tensor& p, const MuonOptions& options) {
  const auto& g = p.grad();
  return options.ortho.kind == OrthoKind::NewtonSchulz && g.defined() && gram_newton_schulz_applies(p) &&
         g.scalar_type() == p.scalar_type() && g.is_contiguous() && g.sizes() == p.sizes() &&
         g.device() == p.device();
}

void thin_muon_step(at::Tensor& p, at::Tensor& momentum_buffer, const MuonOptions& options, double lr) {
  const auto& g = p.grad();
  const bool fresh = !momentum_buffer.defined();
  if (options.momentum != 0.0 && fresh) momentum_buffer = at::empty_like(g);
  TORCH_CHECK(options.momentum == 0.0 || (momentum_buffer.is_contiguous() && momentum_buffer.sizes() == p.sizes() &&
                                          momentum_buffer.scalar_type() == p.scalar_type()),
              "thin_muon_step: momentum buffer does not match the parameter");
  const double lr_step = lr * muon_lr_scale(p.size(0), p.size(1), options.lr_scaling);
  const double decay = 1.0 - lr * options.weight_decay;
  if (p.scalar_type() == at::kDouble) {
    step<double>(p.data_ptr<double>(), g.data_ptr<double>(),
                 options.momentum != 0.0 ? momentum_buffer.data_ptr<double>() : nullptr, fresh, p.size(0), p.size(1),
                 options, lr_step, decay);
  } else {
    step<float>(p.data_ptr<float>(), g.data_ptr<float>(),
                options.momentum != 0.0 ? momentum_buffer.data_ptr<float>() : nullptr, fresh, p.size(0), p.size(1),
                options, lr_step, decay);
  }
}

}  // namespace lorascope
