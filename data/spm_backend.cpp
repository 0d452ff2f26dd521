#include "data/spm_backend.h"

#include <dlfcn.h>
#include <unistd.h>

#include <filesystem>
#include <mutex>
#include <stdexcept>

namespace lorascope {

namespace fs = std::filesystem;

namespace {

std::vector<std::string> candidates() {
  std::vector<std::string> paths;
  if (const char* env = std::getenv("LORASCOPE_SPM_MODULE"); env && *env) paths.emplace_back(env);
#ifdef LORASCOPE_SPM_MODULE
  paths.emplace_back(LORASCOPE_SPM_MODULE);
#endif
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    paths.push_back((exe.parent_path() / "liblorascope_spm.so").string());
    paths.push_back((exe.parent_path().parent_path() / "liblorascope_spm.so").string());
  }
  return paths;
}

// gcc says __SANITIZE_ADDRESS__, clang __has_feature(address_sanitizer).
#if defined(__SANITIZE_ADDRESS__)
#define LORASCOPE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LORASCOPE_ASAN 1
#endif
#endif

void* open_deepbind(const std::string& path) {
  constexpr int flags = RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND;
#ifdef LORASCOPE_ASAN
  // AddressSanitizer's dlopen interceptor refuses RTLD_DEEPBIND (a deep-bound library could
  // reach libc's malloc instead of ASan's). dlmopen into the base namespace is the same load
  // and is not intercepted, so the sanitizer build (scripts/sanitize.sh) can run the tokenizer
  // tests; the plugin's own code is instrumented, only libsentencepiece's direct malloc calls
  // bypass ASan.
  return ::dlmopen(LM_ID_BASE, path.c_str(), flags);
#else
  return ::dlopen(path.c_str(), flags);
#endif
}

const SpmBackend* open_backend() {
  std::string tried;
  for (const auto& path : candidates()) {
    if (!fs::exists(path)) {
      tried += "\n  " + path + ": not found";
      continue;
    }
    // DEEPBIND: sentencepiece binds to its bundled protobuf, not libtorch's libprotobuf.
    void* handle = open_deepbind(path);
    if (!handle) {
      tried += "\n  " + path + ": " + ::dlerror();
      continue;
    }
    using Entry = const SpmBackend* (*)();
    auto entry = reinterpret_cast<Entry>(::dlsym(handle, "lorascope_spm_backend"));
    if (!entry) {
      tried += "\n  " + path + ": no lorascope_spm_backend symbol";
      continue;
    }
    return entry();  // never dlclose'd: the backend lives for the process
  }
  throw std::runtime_error(
      "tokenizer: cannot load the sentencepiece plugin liblorascope_spm.so "
      "(build the lorascope_spm target or set LORASCOPE_SPM_MODULE); tried:" +
      tried);
}

}  // namespace

const SpmBackend& spm_backend() {
  static std::once_flag once;
  static const SpmBackend* backend = nullptr;
  static std::string error;
  std::call_once(once, [] {
    try {
      backend = open_backend();
    } catch (const std::exception& e) {
      error = e.what();
    }
  });
  if (!backend) throw std::runtime_error(error);
  return *backend;
}

}  // namespace lorascope
