// trainer/threads.h: --threads N reaches every pool that runs the step's work, OpenBLAS's
// included (Debian's LibTorch hands its GEMMs to OpenBLAS, whose pool at::set_num_threads does
// not size).
#include <gtest/gtest.h>

#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

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

// Runs reexec_with_bounded_openmp_wait("/usr/bin/env") in a child whose OMP_WAIT_POLICY is
// `policy` (nullptr: unset) and returns what the child printed.
std::string child_output(const char* policy) {
  int fds[2];
  if (pipe(fds) != 0) return "pipe failed";
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    if (policy) setenv("OMP_WAIT_POLICY", policy, 1); else unsetenv("OMP_WAIT_POLICY");
    unsetenv("GOMP_SPINCOUNT");
    char arg0[] = "env";
    char* argv[] = {arg0, nullptr};
    reexec_with_bounded_openmp_wait("/usr/bin/env", argv);
    const char msg[] = "not replaced\n";
    (void)!write(1, msg, sizeof(msg) - 1);
    _exit(0);
  }
  close(fds[1]);
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = read(fds[0], buf, sizeof(buf))) > 0;) out.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return out;
}

TEST(ThreadsTest, ReexecBoundsTheOpenMpWaitUnlessTheUserChose) {
  // Which of the two it sets depends on this machine's load right now; exactly one of them.
  const auto unset = child_output(nullptr);
  const bool passive = unset.find("OMP_WAIT_POLICY=PASSIVE\n") != std::string::npos;
  const bool brief = unset.find("GOMP_SPINCOUNT=3000\n") != std::string::npos;
  EXPECT_TRUE(passive != brief) << unset;
  const auto chosen = child_output("ACTIVE");
  EXPECT_EQ(chosen, "not replaced\n");
  for (double quiet : {0.0, 0.49}) {
    EXPECT_STREQ(openmp_wait_for_load(quiet).variable, "GOMP_SPINCOUNT");
    EXPECT_STREQ(openmp_wait_for_load(quiet).value, "3000");
  }
  for (double busy : {0.5, 12.0}) {
    EXPECT_STREQ(openmp_wait_for_load(busy).variable, "OMP_WAIT_POLICY");
    EXPECT_STREQ(openmp_wait_for_load(busy).value, "PASSIVE");
  }
}

}  // namespace
}  // namespace lorascope
