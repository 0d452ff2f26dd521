#include "optim/factor_groups.h"

#include <cmath>
#include <stdexcept>
#include <string>

namespace lorascope {

namespace {
std::vector<at::Tensor> all_params(const Optimizer* a, const Optimizer* b) {
  std::vector<at::Tensor> out;
  if (a) out = a->params();
  if (b) out.insert(out.end(), b->params().begin(), b->params().end());
  return out;
}
}  // namespace

FactorGroups::FactorGroups(std::unique_ptr<Optimizer> for_A, std::unique_ptr<Optimizer> for_B)
    : Optimizer(all_params(for_A.get(), for_B.get()),
                for_A ? for_A->base_lr() : (for_B ? for_B->base_lr() : 0.0)),
      a_(std::move(for_A)),
      b_(std::move(for_B)) {
  if (!a_ && !b_) throw std::invalid_argument("factor groups: no optimizer for A nor for B");
}

void FactorGroups::step() {
  if (a_) a_->step();
  if (b_) b_->step();
  ++step_;
}

std::string FactorGroups::name() const {
  return "A:" + (a_ ? a_->name() : std::string("frozen")) + ",B:" + (b_ ? b_->name() : std::string("frozen"));
}

void FactorGroups::set_lr_factor(double factor) {
  Optimizer::set_lr_factor(factor);
  if (a_) a_->set_lr_factor(factor);
  if (b_) b_->set_lr_factor(factor);
}

TensorDict FactorGroups::state_dict() const {
  TensorDict state;
  if (a_) state = with_prefix(a_->state_dict(), "A.");
  if (b_) {
    auto b = with_prefix(b_->state_dict(), "B.");
    state.insert(b.begin(), b.end());
  }
  state["step"] = at::scalar_tensor(static_cast<int64_t>(step_), at::kLong);
  return state;
}

void FactorGroups::load_state_dict(const TensorDict& state) {
  if (a_) a_->load_state_dict(strip_prefix(state, "A."));
  if (b_) b_->load_state_dict(strip_prefix(state, "B."));
  Optimizer::load_state_dict(state);
}

std::unique_ptr<FactorGroups> lora_plus(const std::vector<LoraPair>& pairs, double lr, double ratio,
                                        const OptimizerFactory& make) {
  if (!(ratio > 0) || !std::isfinite(ratio)) {
    throw std::invalid_argument("lora_plus: ratio must be a finite number > 0, got " + std::to_string(ratio));
  }
  if (pairs.empty()) throw std::invalid_argument("lora_plus: no (A, B) pairs");
  std::vector<at::Tensor> As, Bs;
  for (const auto& p : pairs) {
    As.push_back(p.A);
    Bs.push_back(p.B);
  }
  return std::make_unique<FactorGroups>(make(std::move(As), lr), make(std::move(Bs), ratio * lr));
}

}  // namespace lorascope
