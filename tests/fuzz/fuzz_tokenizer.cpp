// libFuzzer target: loading a sentencepiece model file through the plugin's backend
// (data/spm/spm_module.cpp, linked here directly: without LibTorch there is no protobuf clash),
// then encoding and decoding with whatever loaded. A bad file must give an error string.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "data/spm_backend.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::filesystem::path path =
      std::filesystem::temp_directory_path() / ("lorascope_fuzz_spm_" + std::to_string(::getpid()));
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(data),
                                                                static_cast<std::streamsize>(size));
  const auto& backend = *lorascope_spm_backend();
  std::shared_ptr<lorascope::SpmBackend::Processor> sp;
  if (!backend.load(path.string(), &sp).empty() || !sp) return 0;
  std::vector<int> ids;
  if (backend.encode(*sp, "the cat sat on the mat, 1/2 of it.", &ids).empty()) {
    std::string text;
    (void)backend.decode(*sp, ids, &text);
  }
  for (char which : {'n', 'p', 'u', 'b', 'e'}) (void)backend.id(*sp, which);
  return 0;
}
