// The header of a safetensors file (the Hugging Face weight format), parsed and validated without
// LibTorch (models/safetensors.h reads the tensors; tests/fuzz/fuzz_safetensors fuzzes this):
//   bytes 0..7   N, the header length, unsigned 64-bit little-endian
//   bytes 8..8+N a JSON object {"NAME": {"dtype": "F32", "shape": [..], "data_offsets": [b, e]},
//                ..., "__metadata__": {"key": "string", ...}} (may be padded with spaces)
//   the rest     the data section; tensor bytes [b, e) relative to its start, little-endian,
//                row-major. The entries cover the data section exactly: no overlaps, no holes.
// Every size and offset is checked against the file's length before anything is allocated or
// read, so a truncated or hostile file gives an error naming it, never a crash.
// Sharded checkpoints: DIR/model.safetensors.index.json {"weight_map": {NAME: "shard file"}}.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace lorascope {

struct SafetensorsEntry {
  std::string dtype;             // "F64" | "F32" | "F16" | "BF16" | "I64" | "I32" | "U8" | "BOOL"
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;   // byte range in the data section
};

struct SafetensorsHeader {
  std::map<std::string, SafetensorsEntry> tensors;
  std::map<std::string, std::string> metadata;  // "__metadata__"
  uint64_t data_start = 0;                       // 8 + N
};

// Parses and validates the header of a whole file given as bytes (file_size = size of the whole
// file, of which the first `available` bytes are in `bytes`, at least min(file_size, 8 + N)).
// Throws std::runtime_error("WHERE: ...") on anything malformed. Pure: easy to fuzz.
SafetensorsHeader parse_safetensors_header(const uint8_t* bytes, size_t available, uint64_t file_size,
                                           const std::string& where);

// Bytes per element of a dtype name ("F32" -> 4); 0 for a name the format or lorascope lacks.
uint64_t safetensors_dtype_bytes(const std::string& name);

}  // namespace lorascope
