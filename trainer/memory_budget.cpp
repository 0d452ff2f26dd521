#include "trainer/memory_budget.h"

#include <c10/util/Exception.h>

#include <cstdio>
#include <fstream>
#include <new>
#include <sstream>

namespace lorascope {

std::string format_bytes(uint64_t bytes) {
  char buf[64];
  const double b = static_cast<double>(bytes);
  if (b >= 1024.0 * 1024 * 1024) {
    std::snprintf(buf, sizeof buf, "%.2f GiB", b / (1024.0 * 1024 * 1024));
  } else if (b >= 1024.0 * 1024) {
    std::snprintf(buf, sizeof buf, "%.1f MiB", b / (1024.0 * 1024));
  } else {
    std::snprintf(buf, sizeof buf, "%llu bytes", static_cast<unsigned long long>(bytes));
  }
  return buf;
}

int64_t host_available_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string key, unit;
    int64_t kib = -1;
    if (fields >> key >> kib >> unit && key == "MemAvailable:" && kib >= 0 && unit == "kB") return kib * 1024;
  }
  return -1;
}

void require_memory(uint64_t needed, int64_t available, const std::string& what, const std::string& where) {
  if (available < 0 || needed <= static_cast<uint64_t>(available)) return;
  throw OutOfMemoryError(what + " needs " + format_bytes(needed) + ", but " + where + " has " +
                         format_bytes(static_cast<uint64_t>(available)) + " available");
}

void with_memory_context(const std::function<void()>& fn, uint64_t bytes, const std::string& what,
                         const std::string& device) {
  const std::string head = what + " (" + format_bytes(bytes) + ") does not fit on " + device + ": ";
  try {
    fn();
  } catch (const std::bad_alloc&) {
    throw OutOfMemoryError(head + "the allocator failed");
  } catch (const c10::Error& e) {
    // CUDA's caching allocator reports "CUDA out of memory. Tried to allocate ..." (a
    // c10::OutOfMemoryError from LibTorch 2.x on, a plain c10::Error in 1.13); keep its sizes.
    // The CPU allocator says "DefaultCPUAllocator: can't allocate memory" (1.13) or "not enough
    // memory" (2.x): "you tried to allocate N bytes".
    const std::string msg = e.what_without_backtrace();
    if (msg.find("out of memory") == std::string::npos && msg.find("not enough memory") == std::string::npos &&
        msg.find("can't allocate memory") == std::string::npos) {
      throw;
    }
    throw OutOfMemoryError(head + msg.substr(0, msg.find('\n')));
  }
}

}  // namespace lorascope
