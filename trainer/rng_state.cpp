#include "trainer/rng_state.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>
#include <torch/cuda.h>

#include <mutex>
#include <string>

namespace lorascope {

namespace {
int64_t cuda_devices() { return torch::cuda::is_available() ? static_cast<int64_t>(torch::cuda::device_count()) : 0; }

at::Generator cuda_generator(int64_t i) {
  return at::globalContext().defaultGenerator(at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(i)));
}
}  // namespace

void seed_generators(uint64_t seed) {
  {
    at::Generator cpu = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(cpu.mutex());
    cpu.set_current_seed(seed);
  }
  for (int64_t i = 0; i < cuda_devices(); ++i) {
    at::Generator g = cuda_generator(i);
    std::lock_guard<std::mutex> lock(g.mutex());
    g.set_current_seed(seed);
  }
}

TensorDict generator_states() {
  TensorDict out;
  {
    at::Generator cpu = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(cpu.mutex());
    out["cpu_generator"] = cpu.get_state();
  }
  for (int64_t i = 0; i < cuda_devices(); ++i) {
    at::Generator g = cuda_generator(i);
    std::lock_guard<std::mutex> lock(g.mutex());
    out["cuda_generator_" + std::to_string(i)] = g.get_state();
  }
  return out;
}

std::string restore_generator_states(const TensorDict& states) {
  {
    at::Generator cpu = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(cpu.mutex());
    cpu.set_state(states.at("cpu_generator"));
  }
  std::string problem;
  const int64_t devices = cuda_devices();
  for (int64_t i = 0; i < devices; ++i) {
    auto it = states.find("cuda_generator_" + std::to_string(i));
    if (it == states.end()) {
      problem = "no CUDA generator state for device " + std::to_string(i) + " (checkpoint written without CUDA)";
      continue;
    }
    at::Generator g = cuda_generator(i);
    std::lock_guard<std::mutex> lock(g.mutex());
    g.set_state(it->second);
  }
  for (const auto& [key, value] : states) {
    if (key.rfind("cuda_generator_", 0) == 0 && std::stoll(key.substr(15)) >= devices) {
      problem = key + ": the checkpoint used a CUDA device this machine lacks";
    }
  }
  return problem;
}

}  // namespace lorascope
