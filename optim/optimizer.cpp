#include "optim/optimizer.h"

#include <cmath>
#include <stdexcept>

namespace lorascope {

Optimizer::Optimizer(std::vector<at::Tensor> params, double base_lr)
    : params_(std::move(params)), base_lr_(base_lr), lr_(base_lr) {
  if (!std::isfinite(base_lr) || base_lr < 0) {
    throw std::invalid_argument("optimizer: learning rate must be a finite number >= 0, got " +
                                std::to_string(base_lr));
  }
}

void Optimizer::zero_grad() {
  for (auto& p : params_) {
    if (p.grad().defined()) p.mutable_grad() = at::Tensor();
  }
}

void Optimizer::set_lr_factor(double factor) { lr_ = base_lr_ * factor; }

void Optimizer::check_finite_lr() const {
  if (!std::isfinite(lr_)) throw std::runtime_error("optimizer: learning rate is not finite");
}

TensorDict Optimizer::state_dict() const {
  TensorDict state;
  state["step"] = at::scalar_tensor(static_cast<int64_t>(step_), at::kLong);
  for (const auto& buffer : buffers_) {
    for (size_t i = 0; i < buffer.slots->size(); ++i) {
      const auto& t = (*buffer.slots)[i];
      if (t.defined()) state["param." + std::to_string(i) + "." + buffer.name] = t.detach().clone();
    }
  }
  return state;
}

void Optimizer::load_state_dict(const TensorDict& state) {
  auto it = state.find("step");
  if (it == state.end()) throw std::runtime_error("optimizer state: missing key \"step\"");
  const int64_t step = it->second.item<int64_t>();
  for (const auto& buffer : buffers_) {
    std::vector<at::Tensor> loaded(params_.size());
    for (size_t i = 0; i < params_.size(); ++i) {
      const std::string key = "param." + std::to_string(i) + "." + buffer.name;
      auto found = state.find(key);
      if (found == state.end()) continue;  // buffer not created yet when saved (no grad so far)
      if (!found->second.sizes().equals(params_[i].sizes())) {
        throw std::runtime_error("optimizer state: " + key + ": expected shape " +
                                 c10::str(params_[i].sizes()) + ", got " +
                                 c10::str(found->second.sizes()));
      }
      loaded[i] = found->second.to(params_[i].options()).clone();
    }
    *buffer.slots = std::move(loaded);
  }
  step_ = step;
}

TensorDict with_prefix(const TensorDict& dict, const std::string& prefix) {
  TensorDict out;
  for (const auto& [k, v] : dict) out[prefix + k] = v;
  return out;
}

TensorDict strip_prefix(const TensorDict& dict, const std::string& prefix) {
  TensorDict out;
  for (const auto& [k, v] : dict) {
    if (k.rfind(prefix, 0) == 0) out[k.substr(prefix.size())] = v;
  }
  return out;
}

}  // namespace lorascope
