// The whole build shares one -march (CMakeLists.txt): Eigen code instantiated here and in the
// library must agree on vector width and allocation alignment, or a matrix allocated on one side
// is freed with the other side's routine (ODR violation, issue 15 item 7).
#include <gtest/gtest.h>

#include "optim/small_matrix.h"
#include "util/eigen.h"

TEST(BuildFlagsTest, EigenAlignmentIsTheSameInTestsAndLibrary) {
  EXPECT_EQ(lorascope::small::eigen_max_align_bytes(), EIGEN_MAX_ALIGN_BYTES);
}
