// LibTorch starts with one intra-op thread on Debian; lorascope uses every core unless told.
#pragma once

namespace lorascope {

// requested <= 0 means the machine's core count. Returns the number set.
int configure_threads(int requested);

// libgomp's worker threads spin while they wait for work (300,000 rounds with OMP_WAIT_POLICY
// unset). On a machine whose cores are busy with other work a spinning thread holds a core that
// the thread it waits for needs; waiting passively (no spinning) costs on a quiet machine, where
// the parallel regions of a step are short. Demo fine-tune step, 2 threads, 2 cores (BENCHMARKS.md):
//                          quiet     two busy processes beside it
//   libgomp default        94 ms     3,556 ms
//   GOMP_SPINCOUNT=3000    97 ms       494 ms
//   OMP_WAIT_POLICY=PASSIVE 151 ms     160 ms
// libgomp reads these only when it is loaded, before main(), so the program runs itself again
// once with the setting chosen from the 1-minute load average at start (this process adds none
// yet): below 0.5, a brief spin (GOMP_SPINCOUNT=3000); else PASSIVE. Nothing when the user set
// OMP_WAIT_POLICY or GOMP_SPINCOUNT. Returns only when it did not exec.
void reexec_with_bounded_openmp_wait(const char* exe, char** argv);
// The variable it sets for a load average: GOMP_SPINCOUNT=3000 or OMP_WAIT_POLICY=PASSIVE.
struct OpenMpWait {
  const char* variable;
  const char* value;
};
OpenMpWait openmp_wait_for_load(double load_average);

}  // namespace lorascope
