// Base of lorascope's optimizers: owns the parameter list, the step count and a learning rate
// that a schedule rescales; subclasses implement step() from each parameter's .grad().
// Parameters without a gradient are skipped, as in torch.optim.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace lorascope {

// Named tensors: optimizer state, checkpoints. Keys are stable across runs ("param.3.momentum").
using TensorDict = std::map<std::string, at::Tensor>;

class Optimizer {
 public:
  Optimizer(std::vector<at::Tensor> params, double base_lr);
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  virtual void step() = 0;
  virtual std::string name() const = 0;
  void zero_grad();

  // The schedule sets lr = base_lr * factor every step.
  virtual void set_lr_factor(double factor);
  double lr() const { return lr_; }
  double base_lr() const { return base_lr_; }
  int64_t step_count() const { return step_; }
  const std::vector<at::Tensor>& params() const { return params_; }

  // State for checkpoints: "step" plus per-parameter buffers "param.<i>.<buffer>".
  virtual TensorDict state_dict() const;
  // Throws std::runtime_error naming the key when a buffer is missing or has the wrong shape.
  virtual void load_state_dict(const TensorDict& state);

 protected:
  // Per-parameter buffers, created lazily; undefined tensors are not saved.
  struct Buffer {
    std::string name;
    std::vector<at::Tensor>* slots;
  };
  void register_buffers(std::vector<Buffer> buffers) { buffers_ = std::move(buffers); }
  void check_finite_lr() const;

  std::vector<at::Tensor> params_;
  double base_lr_;
  double lr_;
  int64_t step_ = 0;

 private:
  std::vector<Buffer> buffers_;
};

// Prefixes every key: used to nest one optimizer's state inside another's (hybrid, checkpoints).
TensorDict with_prefix(const TensorDict& dict, const std::string& prefix);
TensorDict strip_prefix(const TensorDict& dict, const std::string& prefix);

}  // namespace lorascope
