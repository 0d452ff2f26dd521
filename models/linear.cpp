#include "models/linear.h"

#include <stdexcept>

namespace lorascope {

LoraFactor::LoraFactor(at::Tensor w) : torch::nn::Module("LoraFactor") {
  weight = register_parameter("weight", std::move(w));
}

at::Tensor LoraFactor::forward(const at::Tensor& x) const { return at::linear(x, weight); }

Linear::Linear(int64_t in_features, int64_t out_features, bool bias_, at::Generator& gen)
    : torch::nn::Module("Linear") {
  weight = register_parameter("weight", at::empty({out_features, in_features}).normal_(0, 0.02, gen));
  if (bias_) bias = register_parameter("bias", at::zeros({out_features}));
}

at::Tensor Linear::base_forward(const at::Tensor& x) { return at::linear(x, weight, bias); }

at::Tensor Linear::forward(const at::Tensor& x) {
  at::Tensor out = at::linear(x, weight, bias);  // (..., out)
  if (!has_adapter() || merged) return out;
  const at::Tensor dx = dropout > 0 ? at::dropout(x, dropout, is_training()) : x;
  // The scaling multiplies the (..., r) tensor and the sum goes into the base output in place:
  // two fewer passes over (..., out) forward and one backward than out + scaling * B(A(x)).
  // at::linear's backward does not read its output, so the in-place add is safe for autograd.
  return out.add_(lora_B->forward(lora_A->forward(dx) * scaling));  // (..., r) -> (..., out)
}

void Linear::add_adapter(const at::Tensor& A, const at::Tensor& B, double scaling_, double dropout_) {
  if (has_adapter()) throw std::runtime_error("Linear: already has an adapter");
  if (A.dim() != 2 || B.dim() != 2 || A.size(1) != in_features() || B.size(0) != out_features() ||
      B.size(1) != A.size(0)) {
    throw std::invalid_argument("Linear: adapter A " + c10::str(A.sizes()) + ", B " +
                                c10::str(B.sizes()) + " do not fit weight " + c10::str(weight.sizes()));
  }
  // Copies, so that the adapter never aliases the caller's tensors.
  const auto opts = weight.options().requires_grad(false);
  const auto copy = [&](const at::Tensor& t) { return t.detach().to(opts, false, true).contiguous(); };
  lora_A = register_module("lora_A", std::make_shared<LoraFactor>(copy(A)));
  lora_B = register_module("lora_B", std::make_shared<LoraFactor>(copy(B)));
  scaling = scaling_;
  dropout = dropout_;
  merged = false;
}

at::Tensor Linear::delta_weight() const {
  if (!has_adapter()) throw std::runtime_error("Linear: no adapter");
  return scaling * at::matmul(lora_B->weight, lora_A->weight);  // (out, r) (r, in)
}

}  // namespace lorascope
