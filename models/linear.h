// The one linear layer of lorascope's models: torch::nn::Linear's parameters ("weight" (out, in),
// optional "bias" (out)) plus an optional LoRA adapter (PEFT tuners/lora layer):
//   y = x W^T + b + scaling * lora_B(lora_A(dropout(x)))      unless merged
// lora_A / lora_B are submodules with one parameter "weight", so an adapter's parameters are
// "<path>.lora_A.weight" (r, in) and "<path>.lora_B.weight" (out, r), PEFT's keys without the
// adapter name. Adapters are attached by attach_lora() (models/lora.h).
#pragma once

#include <ATen/core/Generator.h>
#include <torch/nn/module.h>

#include <memory>

namespace lorascope {

// One LoRA factor: a bias-free linear map.
class LoraFactor : public torch::nn::Module {
 public:
  explicit LoraFactor(at::Tensor w);
  at::Tensor forward(const at::Tensor& x) const;  // (..., in) -> (..., out)
  at::Tensor weight;
};

class Linear : public torch::nn::Module {
 public:
  // weight ~ N(0, 0.02), bias = 0 (HF's _init_weights), drawn from gen in the default dtype.
  Linear(int64_t in_features, int64_t out_features, bool bias, at::Generator& gen);

  at::Tensor forward(const at::Tensor& x);       // (..., in) -> (..., out)
  at::Tensor base_forward(const at::Tensor& x);  // x W^T + b, the adapter ignored

  // Registers lora_A = A (r, in) and lora_B = B (out, r), converted to the weight's dtype and
  // device. Throws if the layer already has an adapter or the shapes do not fit.
  void add_adapter(const at::Tensor& A, const at::Tensor& B, double scaling, double dropout);
  bool has_adapter() const { return lora_A != nullptr; }
  // scaling * B A, (out, in): what the adapter adds to W.
  at::Tensor delta_weight() const;

  int64_t in_features() const { return weight.size(1); }
  int64_t out_features() const { return weight.size(0); }

  at::Tensor weight;  // (out, in)
  at::Tensor bias;    // (out) or undefined
  std::shared_ptr<LoraFactor> lora_A, lora_B;
  double scaling = 0;
  double dropout = 0;
  bool merged = false;  // set by merge_lora(): W already holds scaling * B A
};

}  // namespace lorascope
