// safetensors files (the Hugging Face weight format), read and written without Python (the
// header's layout and checks: models/safetensors_header.h):
//   bytes 0..7   N, the header length, unsigned 64-bit little-endian
//   bytes 8..8+N a JSON object {"NAME": {"dtype": "F32", "shape": [..], "data_offsets": [b, e]},
//                ..., "__metadata__": {"key": "string", ...}} (may be padded with spaces)
//   the rest     the data section; tensor bytes [b, e) relative to its start, little-endian,
//                row-major. The entries cover the data section exactly: no overlaps, no holes.
// Every size and offset is checked against the file's length before anything is allocated or
// read, so a truncated or hostile file gives an error naming it, never a crash.
// Sharded checkpoints: DIR/model.safetensors.index.json {"weight_map": {NAME: "shard file"}}.
#pragma once

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "models/safetensors_header.h"

namespace lorascope {

at::ScalarType safetensors_dtype(const std::string& name, const std::string& where);  // "F32" -> kFloat
std::string safetensors_dtype_name(at::ScalarType type);  // throws for types the format lacks here

// One memory-mapped file. tensor() copies the bytes into a new CPU tensor of the file's dtype.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);  // throws naming the path
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const SafetensorsHeader& header() const { return header_; }
  const std::string& path() const { return path_; }
  bool contains(const std::string& name) const { return header_.tensors.count(name) > 0; }
  std::vector<std::string> names() const;
  at::Tensor tensor(const std::string& name) const;

 private:
  std::string path_;
  SafetensorsHeader header_;
  const uint8_t* map_ = nullptr;
  size_t size_ = 0;
};

// A checkpoint directory: DIR/model.safetensors, or the shards named by
// DIR/model.safetensors.index.json (every shard opened and its names checked against the map).
class SafetensorsCheckpoint {
 public:
  explicit SafetensorsCheckpoint(const std::string& dir);
  bool contains(const std::string& name) const { return where_.count(name) > 0; }
  std::vector<std::string> names() const;
  at::Tensor tensor(const std::string& name) const;
  std::string file_of(const std::string& name) const;  // for error messages
  std::vector<int64_t> shape(const std::string& name) const;
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, size_t> where_;  // name -> index in files_
};

// Every tensor of one file.
std::map<std::string, at::Tensor> load_safetensors(const std::string& path);
// Writes the tensors (any device, any layout; stored contiguous, CPU, in name order) to a
// temporary file renamed into place. Metadata values are strings, as the format requires.
void save_safetensors(const std::map<std::string, at::Tensor>& tensors, const std::string& path,
                      const std::map<std::string, std::string>& metadata = {});
// The bytes save_safetensors writes (for tests and in-memory use).
std::string safetensors_bytes(const std::map<std::string, at::Tensor>& tensors,
                              const std::map<std::string, std::string>& metadata = {});

}  // namespace lorascope
