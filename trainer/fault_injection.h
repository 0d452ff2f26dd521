// Test-only fault injection. It is set through the environment, not the config, so that a run's
// config.json (and --resume's check that the config is unchanged) stays the same:
//
//   LORASCOPE_FAULT=kill_in_checkpoint:N  SIGKILL in the middle of this process's Nth checkpoint
//                                         write (model.pt written, manifest not yet)
//   LORASCOPE_FAULT=nan_grad:S            once, at optimizer step S, the gradient of the first
//                                         trainable parameter becomes NaN
//
// Several faults are separated by commas. Unset (normal runs), every check is false.
#pragma once

#include <cstdint>
#include <string>

namespace lorascope {

// True when LORASCOPE_FAULT names `fault` with the value `at`.
bool fault_requested(const std::string& fault, int64_t at);

}  // namespace lorascope
