// The one way lorascope includes Eigen (scripts/check_quiet_build.sh rejects any other).
//
// GCC 12's AVX-512 intrinsics define _mm512_undefined_pd() as `__m512d __Y = __Y;`, and every
// Eigen packet transpose that inlines them raises -Wmaybe-uninitialized inside <avx512fintrin.h>
// (GCC bug 105593, fixed in GCC 13): about 1,600 warnings in a -march=native build on an AVX-512
// machine, none of them ours. GCC reports the warning at the intrinsic's own line and honours a
// diagnostic pragma by location, so silencing it around the intrinsics' first inclusion silences
// exactly those lines; our code keeps -Wmaybe-uninitialized. This works because no header we
// include earlier pulls in <immintrin.h> (ATen's does not); the CI's zero-warning check would say
// if one did.
#pragma once

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif
#include <Eigen/Dense>
#include <Eigen/SVD>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
