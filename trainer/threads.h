// LibTorch starts with one intra-op thread on Debian; lorascope uses every core unless told.
#pragma once

namespace lorascope {

// requested <= 0 means the machine's core count. Returns the number set.
int configure_threads(int requested);

// libgomp's worker threads spin while they wait for work (OMP_WAIT_POLICY unset); on a machine
// whose cores are shared a spinning thread holds a core that the thread it waits for needs
// (BENCHMARKS.md: 2 threads, loaded VM, 58 s against 0.23 s per demo fine-tune step). libgomp
// reads the policy only when it is loaded, before main(), so the one way for the program to
// change it is to run itself again with OMP_WAIT_POLICY=PASSIVE: this execs `exe` with argv
// and that variable set, unless the user set OMP_WAIT_POLICY or GOMP_SPINCOUNT. Returns only
// when it did not exec (the user's setting, or exec failed).
void reexec_with_passive_openmp_wait(const char* exe, char** argv);

}  // namespace lorascope
