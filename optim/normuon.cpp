#include "optim/normuon.h"

#include <ATen/core/grad_mode.h>  // at::NoGradGuard (not in <ATen/ATen.h> from LibTorch 2 on)
#include <cmath>
#include <stdexcept>

namespace lorascope {

NorMuonRescale parse_normuon_rescale(const std::string& name) {
  if (name == "paper") return NorMuonRescale::Paper;
  if (name == "preserve_norm") return NorMuonRescale::PreserveNorm;
  throw std::invalid_argument("expected one of paper, preserve_norm, got \"" + name + "\"");
}

at::Tensor normuon_normalize(const at::Tensor& O, at::Tensor& v, const NorMuonOptions& options) {
  TORCH_CHECK(O.dim() == 2, "normuon: expected a matrix");
  auto O32 = O.to(at::promote_types(O.scalar_type(), at::kFloat));  // bf16 directions: statistics in float32
  auto row_mean = (O32 * O32).mean(/*dim=*/{1}, /*keepdim=*/true);  // (m, 1)
  if (!v.defined()) v = at::zeros_like(row_mean);
  v.mul_(options.beta2).add_(row_mean, 1.0 - options.beta2);
  auto Ohat = O32 / (v.sqrt() + options.eps);                          // (m, n)
  const double norm_hat = at::linalg_vector_norm(Ohat, 2).item<double>();
  if (norm_hat == 0.0) return at::zeros_like(O);
  const double target = options.rescale == NorMuonRescale::Paper
                            ? 0.2 * std::sqrt(static_cast<double>(O.size(0) * O.size(1)))
                            : at::linalg_vector_norm(O32, 2).item<double>();
  return (Ohat * (target / norm_hat)).to(O.scalar_type());
}

NorMuon::NorMuon(std::vector<at::Tensor> params, MuonOptions muon, NorMuonOptions normuon)
    : Optimizer(std::move(params), muon.lr),
      muon_(muon),
      normuon_(normuon),
      momentum_(params_.size()),
      row_second_moment_(params_.size()) {
  if (!(muon_.momentum >= 0.0 && muon_.momentum < 1.0)) {
    throw std::invalid_argument("normuon: momentum must be in [0, 1), got " + std::to_string(muon_.momentum));
  }
  if (!(normuon_.beta2 >= 0.0 && normuon_.beta2 < 1.0)) {
    throw std::invalid_argument("normuon: beta2 must be in [0, 1), got " + std::to_string(normuon_.beta2));
  }
  if (!(normuon_.eps > 0.0)) throw std::invalid_argument("normuon: eps must be > 0");
  for (size_t i = 0; i < params_.size(); ++i) {
    if (params_[i].dim() != 2) {
      throw std::invalid_argument("normuon: parameter " + std::to_string(i) + " is not a matrix (shape " +
                                  c10::str(params_[i].sizes()) + ")");
    }
  }
  register_buffers({{"momentum", &momentum_}});
}

TensorDict NorMuon::state_dict() const {
  auto state = Optimizer::state_dict();
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto& v = row_second_moment_[i];
    if (v.defined()) state["param." + std::to_string(i) + ".row_second_moment"] = v.detach().clone();
  }
  return state;
}

void NorMuon::load_state_dict(const TensorDict& state) {
  std::vector<at::Tensor> loaded(params_.size());
  for (size_t i = 0; i < params_.size(); ++i) {
    const std::string key = "param." + std::to_string(i) + ".row_second_moment";
    auto found = state.find(key);
    if (found == state.end()) continue;
    const std::vector<int64_t> expected = {params_[i].size(0), 1};
    if (!found->second.sizes().equals(expected)) {
      throw std::runtime_error("optimizer state: " + key + ": expected shape " + c10::str(at::IntArrayRef(expected)) +
                               ", got " + c10::str(found->second.sizes()));
    }
    loaded[i] = found->second.to(params_[i].device()).clone();
  }
  Optimizer::load_state_dict(state);  // momentum and step; throws before anything changes here
  row_second_moment_ = std::move(loaded);
}

void NorMuon::step() {
  check_finite_lr();
  at::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    auto& p = params_[i];
    if (!p.grad().defined()) continue;
    auto O = muon_direction(p.grad(), momentum_[i], muon_);
    auto D = normuon_normalize(O, row_second_moment_[i], normuon_);
    if (muon_.weight_decay != 0.0) p.mul_(1.0 - lr_ * muon_.weight_decay);
    p.add_(D, -lr_ * muon_lr_scale(p.size(0), p.size(1), muon_.lr_scaling));
  }
  ++step_;
}

}  // namespace lorascope
