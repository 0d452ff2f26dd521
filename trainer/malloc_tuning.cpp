#include "trainer/malloc_tuning.h"

#include <cstdlib>
#include <cstring>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

extern char** environ;

namespace lorascope {

namespace {

// The user's own malloc settings win (glibc reads these at start-up; mallopt would override them).
bool user_configured_malloc() {
  if (const char* t = std::getenv("GLIBC_TUNABLES"); t && std::strstr(t, "glibc.malloc.")) return true;
  for (char** e = environ; e && *e; ++e) {
    if (std::strncmp(*e, "MALLOC_", 7) == 0) return true;  // MALLOC_TRIM_THRESHOLD_, MALLOC_ARENA_MAX, ...
  }
  return false;
}

}  // namespace

bool tune_malloc_for_tensors() {
#if defined(__GLIBC__)
  if (user_configured_malloc()) return false;
  // Why: glibc serves blocks above its mmap threshold (128 KiB at start, raised on the fly to
  // the largest block freed) with a fresh mmap, and returns the top of the heap to the kernel
  // once more than the trim threshold (twice the mmap threshold) is free. A training step frees
  // tens of megabytes of activations and gradients at its end and allocates them again in the
  // next step, so every step unmapped/trimmed them and took a minor page fault for each 4 KiB
  // page on first touch: 1.1-1.4 million faults in a demo fine-tune against 0.13 million for
  // PyTorch in Python (whose start-up settles the dynamic thresholds differently), 0.78-0.88x of
  // its tokens/s. Fixed thresholds keep those buffers in the heap between steps; blocks above
  // 32 MiB (glibc's largest mmap threshold) are still mapped, and at most 512 MiB of free heap is
  // kept. Setting M_MMAP_THRESHOLD also turns off glibc's dynamic adjustment.
  const bool mmap_ok = mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024) == 1;
  const bool trim_ok = mallopt(M_TRIM_THRESHOLD, 512 * 1024 * 1024) == 1;
  return mmap_ok && trim_ok;
#else
  return false;
#endif
}

}  // namespace lorascope
