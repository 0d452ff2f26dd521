// One-line progress report on stderr: step, loss, throughput and ETA. Redrawn in place on a
// terminal (at most every 0.5 s); in logs and CI, one line every tenth of the run.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace lorascope {

class Progress {
 public:
  Progress(std::string label, int64_t total_steps, int64_t first_step = 0);
  void update(int64_t step, double loss, double tokens_per_second);
  void finish();

 private:
  std::string label_;
  int64_t total_, first_, last_printed_step_ = -1;
  bool tty_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace lorascope
