// libFuzzer target: the safetensors header parser (models/safetensors_header.cpp), the part of
// the reader that trusts nothing from the file. The input is a whole file; a bad one must give an
// error, and a header it accepts must describe tensors that lie inside the file, tile its data
// section exactly and match their dtype and shape (checked again here, independently).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>

#include "models/safetensors_header.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  lorascope::SafetensorsHeader h;
  try {
    h = lorascope::parse_safetensors_header(data, size, size, "fuzz.safetensors");
  } catch (const std::runtime_error&) {
    return 0;
  }
  uint64_t covered = 0;
  for (const auto& [name, e] : h.tensors) {
    uint64_t numel = 1;
    for (int64_t d : e.shape) numel *= static_cast<uint64_t>(d);  // no overflow: the parser checked
    const uint64_t elem = lorascope::safetensors_dtype_bytes(e.dtype);
    if (elem == 0 || e.begin > e.end || h.data_start + e.end > size || numel * elem != e.end - e.begin) std::abort();
    covered += e.end - e.begin;
  }
  if (h.data_start + covered != size) std::abort();
  return 0;
}
