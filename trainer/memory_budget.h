// Memory checks before allocating what a file asks for: a model too large for the host, or for
// the GPU, ends the run with the sizes involved instead of an allocator's crash or the OOM killer.
#pragma once

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>

namespace lorascope {

class OutOfMemoryError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// "4.66 GiB", "312.0 MiB", "812 bytes".
std::string format_bytes(uint64_t bytes);

// Bytes the host can still give without swapping (MemAvailable of /proc/meminfo), or -1 when
// unknown (then nothing is checked).
int64_t host_available_bytes();

// Throws OutOfMemoryError("WHAT needs N, but WHERE has M available") when needed > available
// (available < 0: unknown, no check).
void require_memory(uint64_t needed, int64_t available, const std::string& what, const std::string& where);

// Runs fn (an allocation on `device`, e.g. moving a model there); an out-of-memory failure of the
// allocator (CPU or CUDA) becomes OutOfMemoryError("WHAT (N) does not fit on DEVICE: ...").
void with_memory_context(const std::function<void()>& fn, uint64_t bytes, const std::string& what,
                         const std::string& device);

}  // namespace lorascope
