#include "optim/thin_muon_step.h"

#include "optim/gram_newton_schulz.h"

namespace lorascope {

bool thin_muon_step_applies(const at::Tensor& p, const MuonOptions& options) {
  const auto& g = p.grad();
  return options.ortho.kind == OrthoKind::NewtonSchulz && g.defined() && gram_newton_schulz_applies(p) &&
         g.scalar_type() == p.scalar_type() && g.is_contiguous() && g.sizes() == p.sizes();
}

void thin_muon_step(at::Tensor& p, at::Tensor& momentum_buffer, const MuonOptions& options, double lr) {
  const auto& g = p.grad();
  at::Tensor d = g;
  if (options.momentum != 0.0) {
    if (!momentum_buffer.defined()) {
      momentum_buffer = g.clone();
    } else {
      at::add_out(momentum_buffer, g, momentum_buffer, options.momentum);
    }
    d = options.nesterov ? at::add(g, momentum_buffer, options.momentum) : momentum_buffer;
  }
  const auto f = gram_newton_schulz_factors(d, options.ortho.ns_steps, options.ortho.ns_eps);
  const double step = lr * muon_lr_scale(p.size(0), p.size(1), options.lr_scaling);
  const double decay = 1.0 - lr * options.weight_decay;
  if (f.wide) {
    p.addmm_(f.q, f.y, decay, -step);
  } else {
    p.addmm_(f.y, f.q.t(), decay, -step);
  }
}

}  // namespace lorascope
