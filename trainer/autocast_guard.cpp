#include "trainer/autocast_guard.h"

#include <ATen/autocast_mode.h>
#include <torch/version.h>

namespace lorascope {

// LibTorch 2.4 replaced the per-backend setters (set_cpu_enabled, set_autocast_gpu_dtype, ...)
// with ones that take the device type.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define LORASCOPE_AUTOCAST_BY_DEVICE 1
#endif

namespace {
bool enabled_on(at::DeviceType d) {
#ifdef LORASCOPE_AUTOCAST_BY_DEVICE
  return at::autocast::is_autocast_enabled(d);
#else
  return d == at::kCUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
#endif
}
at::ScalarType dtype_on(at::DeviceType d) {
#ifdef LORASCOPE_AUTOCAST_BY_DEVICE
  return at::autocast::get_autocast_dtype(d);
#else
  return d == at::kCUDA ? at::autocast::get_autocast_gpu_dtype() : at::autocast::get_autocast_cpu_dtype();
#endif
}
void set_on(at::DeviceType d, bool enabled, at::ScalarType dtype) {
#ifdef LORASCOPE_AUTOCAST_BY_DEVICE
  at::autocast::set_autocast_enabled(d, enabled);
  at::autocast::set_autocast_dtype(d, dtype);
#else
  if (d == at::kCUDA) {
    at::autocast::set_enabled(enabled);
    at::autocast::set_autocast_gpu_dtype(dtype);
  } else {
    at::autocast::set_cpu_enabled(enabled);
    at::autocast::set_autocast_cpu_dtype(dtype);
  }
#endif
}
}  // namespace

AutocastGuard::AutocastGuard(at::DeviceType device, bool enabled) : device_(device) {
  if (!enabled) return;
  active_ = true;
  previous_ = enabled_on(device_);
  previous_dtype_ = dtype_on(device_);
  set_on(device_, true, at::kBFloat16);
  at::autocast::increment_nesting();
}

AutocastGuard::~AutocastGuard() {
  if (!active_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  set_on(device_, previous_, previous_dtype_);
}

}  // namespace lorascope
