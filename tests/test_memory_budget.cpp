// Memory checks: sizes in the messages, no check when the budget is unknown, and allocator
// failures (std::bad_alloc, LibTorch's CPU allocator) turned into an error that names the sizes.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <fstream>
#include <new>
#include <string>

#include "trainer/memory_budget.h"

namespace lorascope {
namespace {

std::string oom_message(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const OutOfMemoryError& e) {
    return e.what();
  }
  return "";
}

TEST(MemoryBudgetTest, FormatsBytesInReadableUnits) {
  EXPECT_EQ(format_bytes(812), "812 bytes");
  EXPECT_EQ(format_bytes(3ull << 20), "3.0 MiB");
  EXPECT_EQ(format_bytes(5ull << 29), "2.50 GiB");
}

TEST(MemoryBudgetTest, RequireMemoryNamesBothSizes) {
  EXPECT_NO_THROW(require_memory(100, 100, "x", "y"));
  EXPECT_NO_THROW(require_memory(1ull << 40, -1, "x", "y"));  // unknown budget: no check
  EXPECT_EQ(oom_message([] { require_memory(3ull << 30, 1ull << 30, "model M (1 parameters)", "this machine"); }),
            "model M (1 parameters) needs 3.00 GiB, but this machine has 1.00 GiB available");
}

TEST(MemoryBudgetTest, HostAvailableBytesIsMemAvailable) {
  std::ifstream in("/proc/meminfo");
  std::string key, unit;
  int64_t kib = -1, total = -1;
  while (in >> key >> kib >> unit) {
    if (key == "MemTotal:") total = kib * 1024;
  }
  const int64_t available = host_available_bytes();
  ASSERT_GT(total, 0);
  EXPECT_GT(available, 0);
  EXPECT_LE(available, total);
}

TEST(MemoryBudgetTest, AllocatorFailuresBecomeAnErrorWithTheSizes) {
  auto e = oom_message([] { with_memory_context([] { throw std::bad_alloc(); }, 2048, "the weights", "cpu"); });
  EXPECT_EQ(e, "the weights (2048 bytes) does not fit on cpu: the allocator failed");
  // LibTorch's CPU allocator refusing 4 PiB.
  e = oom_message([] { with_memory_context([] { (void)at::empty({int64_t(1) << 50}, at::kFloat); }, 4ull << 50, "w", "cpu"); });
  EXPECT_NE(e.find("w (4194304.00 GiB) does not fit on cpu: "), std::string::npos) << e;
  EXPECT_EQ(e.find('\n'), std::string::npos) << "one line, no backtrace: " << e;
  // Other LibTorch errors pass through unchanged.
  EXPECT_THROW(with_memory_context([] { (void)at::ones({2, 3}).matmul(at::ones({2, 3})); }, 1, "w", "cpu"), c10::Error);
}

}  // namespace
}  // namespace lorascope
