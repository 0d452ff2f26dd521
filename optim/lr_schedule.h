// Learning-rate schedules as a factor of the base learning rate, a pure function of the step:
//   warmup     factor = (step + 1) / warmup_steps              for step < warmup_steps
//   constant   factor = 1                                       afterwards
//   cosine     factor = min_factor + (1 - min_factor) * (1 + cos(pi * p)) / 2,
//              p = (step - warmup_steps) / (total_steps - warmup_steps), clamped to [0, 1]
#pragma once

#include <cstdint>
#include <string>

namespace lorascope {

struct LrSchedule {
  enum class Kind { Constant, Cosine };
  Kind kind = Kind::Constant;
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;
  double min_factor = 0.0;

  double factor(int64_t step) const;
};

LrSchedule::Kind parse_schedule_kind(const std::string& name);

}  // namespace lorascope
