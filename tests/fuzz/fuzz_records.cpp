// libFuzzer target: the record readers of data/record_datasets.h (GLUE TSV, Alpaca JSON/JSONL),
// strict and with skip_malformed. Malformed input must end in std::runtime_error naming
// FILE:LINE; any other exception or a crash is a bug.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "data/record_datasets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lorascope;
  static const std::filesystem::path path =
      std::filesystem::temp_directory_path() / ("lorascope_fuzz_records_" + std::to_string(::getpid()));
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(data),
                                                                static_cast<std::streamsize>(size));
  for (bool skip : {false, true}) {
    LoadOptions opt;
    opt.skip_malformed = skip;
    int64_t skipped = 0;
    try {
      (void)load_glue_tsv(path, opt, skipped);
    } catch (const std::runtime_error&) {
    }
    try {
      (void)load_alpaca(path, opt, skipped);
    } catch (const std::runtime_error&) {
    }
  }
  return 0;
}
