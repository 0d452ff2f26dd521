#include "trainer/threads.h"

#include <ATen/Parallel.h>

#include <cstdlib>
#include <thread>

namespace lorascope {

int configure_threads(int requested) {
  int n = requested > 0 ? requested : static_cast<int>(std::thread::hardware_concurrency());
  // Ranks started together on one machine (lorascope launch, torchrun) share its cores.
  if (const char* local = std::getenv("LOCAL_WORLD_SIZE"); requested <= 0 && local && std::atoi(local) > 1) {
    n /= std::atoi(local);
  }
  if (n <= 0) n = 1;
  at::set_num_threads(n);
  return n;
}

}  // namespace lorascope
