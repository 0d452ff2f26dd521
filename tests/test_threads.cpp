// trainer/threads.h: --threads N reaches every pool that runs the step's work, OpenBLAS's
// included (Debian's LibTorch hands its GEMMs to OpenBLAS, whose pool at::set_num_threads does
// not size).
#include <gtest/gtest.h>

#include <ATen/Parallel.h>
#include <dlfcn.h>

#include <cstdlib>

#include "trainer/threads.h"

namespace lorascope {
namespace {

TEST(ThreadsTest, ConfigureThreadsSizesOpenMpAndOpenBlas) {
  using GetThreads = int (*)();
  auto* blas_threads = reinterpret_cast<GetThreads>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  const int before = at::get_num_threads();
  for (int n : {1, 2}) {
    EXPECT_EQ(configure_threads(n), n);
    EXPECT_EQ(at::get_num_threads(), n);
    if (blas_threads == nullptr) continue;  // a LibTorch on MKL: at::set_num_threads covers it
    if (std::getenv("OPENBLAS_NUM_THREADS") != nullptr) continue;  // the user's setting wins
    EXPECT_EQ(blas_threads(), n) << "OpenBLAS pool not sized by configure_threads(" << n << ")";
  }
  configure_threads(before);
}

}  // namespace
}  // namespace lorascope
