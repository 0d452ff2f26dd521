#include "trainer/device.h"

#include "trainer/config.h"

namespace lorascope {

at::Device pick_device(const std::string& name) {
  if (name == "cpu") return at::kCPU;
  const bool has_cuda = at::hasCUDA();
  if (name == "cuda" && !has_cuda) {
    throw ConfigError("device: cuda requested but this LibTorch build or machine has no CUDA");
  }
  return has_cuda ? at::Device(at::kCUDA) : at::Device(at::kCPU);
}

}  // namespace lorascope
