#include "trainer/threads.h"

#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <thread>

namespace lorascope {

namespace {

// Debian's LibTorch calls OpenBLAS's pthread build for its GEMMs, and at::set_num_threads does not
// reach OpenBLAS's own pool (it sets OpenMP and MKL only), which starts with one thread per core.
// So `--threads 1` still ran every large matmul on all cores, and two ranks of `launch` on a
// 2-core machine ran four BLAS threads that spin while they wait. Found at run time: a LibTorch
// on MKL has no such symbol. The user's OPENBLAS_NUM_THREADS wins.
void set_blas_threads(int n) {
  if (std::getenv("OPENBLAS_NUM_THREADS") != nullptr) return;
  using SetThreads = void (*)(int);
  if (auto* set = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) set(n);
}

}  // namespace

int configure_threads(int requested) {
  int n = requested > 0 ? requested : static_cast<int>(std::thread::hardware_concurrency());
  // Ranks started together on one machine (lorascope launch, torchrun) share its cores.
  if (const char* local = std::getenv("LOCAL_WORLD_SIZE"); requested <= 0 && local && std::atoi(local) > 1) {
    n /= std::atoi(local);
  }
  if (n <= 0) n = 1;
  at::set_num_threads(n);
  set_blas_threads(n);
  return n;
}

OpenMpWait openmp_wait_for_load(double load_average) {
  if (load_average >= 0.5) return {"OMP_WAIT_POLICY", "PASSIVE"};
  return {"GOMP_SPINCOUNT", "3000"};
}

void reexec_with_bounded_openmp_wait(const char* exe, char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr || std::getenv("GOMP_SPINCOUNT") != nullptr) return;
  double load = 1.0;  // unknown: assume shared
  if (std::FILE* f = std::fopen("/proc/loadavg", "r")) {
    if (std::fscanf(f, "%lf", &load) != 1) load = 1.0;
    std::fclose(f);
  }
  const OpenMpWait wait = openmp_wait_for_load(load);
  if (setenv(wait.variable, wait.value, 1) != 0) return;
  execv(exe, argv);
  unsetenv(wait.variable);  // exec failed: carry on as we were
}

}  // namespace lorascope
