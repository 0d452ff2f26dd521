// What the running CPU can execute, for the kernels compiled for AVX-512 beside the portable build
// (optim/thin_factor_kernels_avx512.cpp, models/fused_swiglu.cpp).
#pragma once

namespace lorascope {

// True when the CPU has AVX-512F together with the AVX2 and FMA those kernels also use; false on
// other CPUs and where the compiler cannot ask (not GCC/clang on x86-64).
bool cpu_has_avx512();

}  // namespace lorascope
