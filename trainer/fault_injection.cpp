#include "trainer/fault_injection.h"

#include <cstdlib>
#include <sstream>

namespace lorascope {

bool fault_requested(const std::string& fault, int64_t at) {
  const char* env = std::getenv("LORASCOPE_FAULT");
  if (!env) return false;
  std::stringstream list(env);
  for (std::string item; std::getline(list, item, ',');) {
    const auto colon = item.find(':');
    if (colon == std::string::npos || item.substr(0, colon) != fault) continue;
    if (item.substr(colon + 1) == std::to_string(at)) return true;
  }
  return false;
}

}  // namespace lorascope
