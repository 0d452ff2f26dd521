#include "models/lora_flow_problem.h"

#include <algorithm>
#include <stdexcept>

namespace lorascope {

LoraLoss parse_lora_loss(const std::string& name) {
  if (name == "trace_squared") return LoraLoss::TraceSquared;
  if (name == "frobenius") return LoraLoss::Frobenius;
  throw std::invalid_argument("expected one of trace_squared, frobenius, got \"" + name + "\"");
}

LoraInit parse_lora_init(const std::string& name) {
  if (name == "gaussian") return LoraInit::Gaussian;
  if (name == "spectral") return LoraInit::Spectral;
  throw std::invalid_argument("expected one of gaussian, spectral, got \"" + name + "\"");
}

LoraFlowProblem::LoraFlowProblem(at::Tensor W0, LoraLoss loss)
    : W0_(W0.to(at::kDouble).contiguous()), loss_(loss) {
  if (W0_.dim() != 2) throw std::invalid_argument("lora flow: W0 must be a matrix");
  if (loss_ == LoraLoss::TraceSquared && W0_.size(0) != W0_.size(1)) {
    throw std::invalid_argument("lora flow: the trace-squared loss needs a square W0, got " +
                                c10::str(W0_.sizes()));
  }
}

double LoraFlowProblem::loss(const at::Tensor& W) const {
  if (loss_ == LoraLoss::TraceSquared) {
    const double a = (W0_ - W).trace().item<double>();
    return 0.5 * a * a;
  }
  return 0.5 * (W0_ - W).square().sum().item<double>();
}

at::Tensor LoraFlowProblem::grad(const at::Tensor& W) const {
  if (loss_ == LoraLoss::TraceSquared) {
    return at::eye(n(), W0_.options()) * (-(W0_ - W).trace());
  }
  return W - W0_;
}

std::pair<at::Tensor, at::Tensor> LoraFlowProblem::lora_grads(const at::Tensor& B,
                                                              const at::Tensor& A) const {
  if (loss_ == LoraLoss::TraceSquared) {
    // grad f = -a I with a = Tr(W0 - BA): skip forming the identity.
    const auto minus_a = -(W0_.trace() - (B * A.t()).sum());
    return {A.t() * minus_a, B.t() * minus_a};
  }
  const auto G = at::matmul(B, A) - W0_;  // (n, m)
  return {at::matmul(G, A.t()), at::matmul(B.t(), G)};
}

std::pair<at::Tensor, at::Tensor> LoraFlowProblem::init(int64_t r, LoraInit init, double sigma,
                                                        at::Generator& gen) const {
  const auto opts = W0_.options();
  auto B0 = at::zeros({n(), r}, opts);
  if (init == LoraInit::Gaussian) return {B0, at::randn({r, m()}, gen, opts) * sigma};
  if (r > std::min(n(), m())) throw std::invalid_argument("lora flow: spectral init needs r <= min(n, m)");
  const auto svd = at::linalg_svd(W0_, /*full_matrices=*/false);
  const auto Vr_t = std::get<2>(svd).slice(0, 0, r);  // (r, m): rows are v_1..v_r
  const auto x0 = at::randn({r}, gen, opts) * sigma;
  return {B0, x0.unsqueeze(1) * Vr_t};
}

}  // namespace lorascope
