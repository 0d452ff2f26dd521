// The "device" config key of every recipe: cpu | cuda | auto (cuda when LibTorch has it).
#pragma once

#include <ATen/ATen.h>

#include <string>

namespace lorascope {

// Throws ConfigError when cuda is asked for and this build or machine has none.
at::Device pick_device(const std::string& name);

}  // namespace lorascope
