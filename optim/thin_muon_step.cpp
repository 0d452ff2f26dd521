#include "optim/thin_muon_step.h"

#include <vector>

#include "optim/gram_newton_schulz.h"
#include "optim/thin_factor_kernels.h"

namespace lorascope {
namespace {

// The Nesterov direction's memory, per thread, grown on demand and kept: allocating it per step
// would fault fresh pages in for every factor where glibc maps large blocks.
float* direction_workspace(int64_t numel) {
  thread_local std::vector<float> buffer;
  if (buffer.size() < static_cast<size_t>(numel)) buffer.resize(static_cast<size_t>(numel));
  return buffer.data();
}

}  // namespace

bool thin_muon_step_applies(const at::Tensor& p, const MuonOptions& options) {
  const auto& g = p.grad();
  return options.ortho.kind == OrthoKind::NewtonSchulz && g.defined() && p.scalar_type() == at::kFloat &&
         gram_newton_schulz_applies(p) && thin_factor_kernels_support(std::min(p.size(0), p.size(1))) &&
         g.scalar_type() == p.scalar_type() && g.is_contiguous() && g.sizes() == p.sizes() &&
         g.device() == p.device();
}

void thin_muon_step(at::Tensor& p, at::Tensor& momentum_buffer, const MuonOptions& options, double lr) {
  TORCH_CHECK(thin_muon_step_applies(p, options), "thin_muon_step: expected a thin float32 factor of rank 8, 16 or 32");
  const auto& g = p.grad();
  ThinMomentum mom;
  mom.enabled = options.momentum != 0.0;
  mom.nesterov = options.nesterov;
  mom.fresh = !momentum_buffer.defined();
  mom.mu = static_cast<float>(options.momentum);
  if (mom.enabled && mom.fresh) momentum_buffer = at::empty_like(g);
  TORCH_CHECK(!mom.enabled || (momentum_buffer.is_contiguous() && momentum_buffer.sizes() == p.sizes() &&
                               momentum_buffer.scalar_type() == p.scalar_type()),
              "thin_muon_step: momentum buffer does not match the parameter");
  const bool wide = p.size(0) <= p.size(1);
  const int64_t r = wide ? p.size(0) : p.size(1), n = wide ? p.size(1) : p.size(0);
  const float* gp = g.data_ptr<float>();
  float* m = mom.enabled ? momentum_buffer.data_ptr<float>() : nullptr;
  float* d = mom.enabled && mom.nesterov ? direction_workspace(r * n) : nullptr;
  // Direction and float64 Gram matrix in one pass, Q from the r x r iteration, then
  // W <- keep W - rate Q D in one pass.
  std::vector<double> gram(r * r), q(r * r);
  thin_direction_gram(gp, m, d, mom, r, n, wide, gram.data());
  gram_newton_schulz_polynomial(gram.data(), r, options.ortho.ns_steps, options.ortho.ns_eps, q.data());
  const std::vector<float> qf(q.begin(), q.end());
  const float keep = static_cast<float>(1.0 - lr * options.weight_decay);
  const float rate = static_cast<float>(lr * muon_lr_scale(p.size(0), p.size(1), options.lr_scaling));
  thin_decayed_update(p.data_ptr<float>(), qf.data(), !mom.enabled ? gp : mom.nesterov ? d : m, r, n, wide, keep,
                      rate);
}

}  // namespace lorascope
