// LoRA's two factors in two optimizer groups: one optimizer for every A, another for every B,
// stepped together under one learning-rate schedule. Two uses:
//
//   LoRA+ (Hayou, Ghosh, Yu 2024, "LoRA+: Efficient Low Rank Adaptation of Large Models",
//          arXiv 2402.12354): the same optimizer on both with lr_B = ratio * lr_A (their
//          lambda = eta_B / eta_A; the paper recommends ratio ~ 2^4 for the usual settings).
//          lora_plus() builds it. PEFT's create_loraplus_optimizer also puts every trainable
//          1-D parameter (biases, norms) into the B group at ratio * lr, applies
//          loraplus_weight_decay (default 0) to every group in place of the optimizer's
//          weight_decay, and gives biases and norms none; the paper scales only B. Those other
//          parameters are the trainer's routing, not this class's.
//   Muon on B only and AdamW on A (or the reverse): different optimizers per factor.
//
// The schedule's factor reaches both, so lr_B / lr_A stays the ratio. State: "A.*" and "B.*".
#pragma once

#include <functional>
#include <memory>

#include "optim/riemannian_lora.h"

namespace lorascope {

class FactorGroups : public Optimizer {
 public:
  // Either may be null (that factor is frozen); not both.
  FactorGroups(std::unique_ptr<Optimizer> for_A, std::unique_ptr<Optimizer> for_B);
  void step() override;
  // "A:<name>,B:<name>", e.g. "A:adamw,B:muon"
  std::string name() const override;
  void set_lr_factor(double factor) override;
  TensorDict state_dict() const override;
  void load_state_dict(const TensorDict& state) override;
  Optimizer* for_A() { return a_.get(); }
  Optimizer* for_B() { return b_.get(); }

 private:
  std::unique_ptr<Optimizer> a_, b_;
};

// Builds an optimizer over the given tensors with the given learning rate.
using OptimizerFactory = std::function<std::unique_ptr<Optimizer>(std::vector<at::Tensor>, double lr)>;

// LoRA+: make(all A, lr) and make(all B, ratio * lr). ratio must be finite and > 0.
std::unique_ptr<FactorGroups> lora_plus(const std::vector<LoraPair>& pairs, double lr, double ratio,
                                        const OptimizerFactory& make);

}  // namespace lorascope
