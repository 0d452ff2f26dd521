// The whole build shares one -march (CMakeLists.txt): Eigen code instantiated here and in the
// library must agree on vector width and allocation alignment, or a matrix allocated on one side
// is freed with the other side's routine (ODR violation, issue 15 item 7).
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <vector>

#include "optim/small_matrix.h"
#include "util/eigen.h"

TEST(BuildFlagsTest, EigenAlignmentIsTheSameInTestsAndLibrary) {
  EXPECT_EQ(lorascope::small::eigen_max_align_bytes(), EIGEN_MAX_ALIGN_BYTES);
}

// With -march=native over LibTorch 1.13's headers this tensor came out all ones (sum 8): the
// build's flags must leave ATen's inline code as the library was built.
TEST(BuildFlagsTest, AtenTensorFromAVectorKeepsItsValues) {
  const auto t = at::tensor(std::vector<int64_t>{1, 1, 1, 1, 1, 1, 1, 0}, at::kLong);
  EXPECT_EQ(t.sum().item<int64_t>(), 7);
  EXPECT_EQ(t[7].item<int64_t>(), 0);
}
