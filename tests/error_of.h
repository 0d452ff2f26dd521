// The message of the exception fn throws, or "(no error)": the tests compare it with the expected
// one-line error (file, key, what was expected).
#pragma once

#include <exception>
#include <functional>
#include <string>

namespace lorascope {

inline std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace lorascope
