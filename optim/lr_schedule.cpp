#include "optim/lr_schedule.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace lorascope {

double LrSchedule::factor(int64_t step) const {
  if (step < warmup_steps) return static_cast<double>(step + 1) / static_cast<double>(warmup_steps);
  if (kind == Kind::Constant) return 1.0;
  const double span = static_cast<double>(std::max<int64_t>(1, total_steps - warmup_steps));
  const double p = std::clamp(static_cast<double>(step - warmup_steps) / span, 0.0, 1.0);
  return min_factor + (1.0 - min_factor) * 0.5 * (1.0 + std::cos(M_PI * p));
}

LrSchedule::Kind parse_schedule_kind(const std::string& name) {
  if (name == "constant") return LrSchedule::Kind::Constant;
  if (name == "cosine") return LrSchedule::Kind::Cosine;
  throw std::invalid_argument("expected one of constant, cosine, got \"" + name + "\"");
}

}  // namespace lorascope
