#include "trainer/progress.h"

#include <unistd.h>

#include <cstdio>

namespace lorascope {

Progress::Progress(std::string label, int64_t total_steps, int64_t first_step)
    : label_(std::move(label)),
      total_(total_steps),
      first_(first_step),
      tty_(isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

void Progress::update(int64_t step, double loss, double tokens_per_second) {
  const auto now = std::chrono::steady_clock::now();
  const bool due = tty_ ? std::chrono::duration<double>(now - last_draw_).count() > 0.5
                        : (total_ < 10 || (step * 10 / total_) != (last_printed_step_ * 10 / total_));
  if (!due && step != total_) return;
  last_draw_ = now;
  last_printed_step_ = step;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double rate = step > first_ ? elapsed / static_cast<double>(step - first_) : 0;
  const int eta = static_cast<int>(rate * static_cast<double>(total_ - step));
  std::fprintf(stderr, "%s%s step %lld/%lld  loss %.4f  %.0f tok/s  ETA %d:%02d%s",
               tty_ ? "\r" : "", label_.c_str(), static_cast<long long>(step),
               static_cast<long long>(total_), loss, tokens_per_second, eta / 60, eta % 60,
               tty_ ? "   " : "\n");
  std::fflush(stderr);
}

void Progress::finish() {
  if (tty_) std::fprintf(stderr, "\n");
}

}  // namespace lorascope
