// The random generators a training run draws from (dropout, and on CUDA every device's
// generator): seeded from the run's seed, saved in checkpoints and restored on resume, so that a
// resumed run continues the same trajectory.
#pragma once

#include <cstdint>

#include "optim/optimizer.h"

namespace lorascope {

// Seeds the default CPU generator and, when CUDA is available, each device's default generator.
void seed_generators(uint64_t seed);
// "cpu_generator" and "cuda_generator_<i>" for each CUDA device.
TensorDict generator_states();
// Restores what generator_states() saved; a CUDA state for a device this machine lacks (or CUDA
// states missing from an old checkpoint) is reported through the returned message, empty if none.
std::string restore_generator_states(const TensorDict& states);

}  // namespace lorascope
