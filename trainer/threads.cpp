#include "trainer/threads.h"

#include <ATen/Parallel.h>

#include <thread>

namespace lorascope {

int configure_threads(int requested) {
  int n = requested > 0 ? requested : static_cast<int>(std::thread::hardware_concurrency());
  if (n <= 0) n = 1;
  at::set_num_threads(n);
  return n;
}

}  // namespace lorascope
