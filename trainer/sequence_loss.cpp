#include "trainer/sequence_loss.h"

namespace lorascope {

at::Tensor loss_sum(const at::Tensor& logits, const at::Tensor& labels, bool classification) {
  if (classification) return at::cross_entropy_loss(logits.to(at::kFloat), labels, {}, at::Reduction::Sum);
  const int64_t V = logits.size(-1);
  return at::cross_entropy_loss(logits.reshape({-1, V}).to(at::kFloat), labels.reshape({-1}), {},
                                at::Reduction::Sum, -100);
}

double loss_count(const at::Tensor& labels, bool classification) {
  if (classification) return static_cast<double>(labels.size(0));
  return labels.ne(-100).sum().item<double>();
}

at::Tensor mean_loss(const at::Tensor& logits, const at::Tensor& labels, bool classification) {
  const auto sum = loss_sum(logits, labels, classification);
  const auto count = classification ? at::scalar_tensor(static_cast<double>(labels.size(0)), sum.options())
                                    : labels.ne(-100).sum().clamp_min(1).to(sum.scalar_type());
  return sum / count;
}

}  // namespace lorascope
