#include "models/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <stdexcept>

namespace lorascope {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// A header larger than this is not a weight file (the reference implementation's limit).
constexpr uint64_t kMaxHeader = 100ull << 20;

[[noreturn]] void fail(const std::string& where, const std::string& what) {
  throw std::runtime_error(where + ": " + what);
}

struct DtypeInfo {
  const char* name;
  at::ScalarType type;
  uint64_t bytes;
};
constexpr DtypeInfo kDtypes[] = {
    {"F64", at::kDouble, 8}, {"F32", at::kFloat, 4}, {"F16", at::kHalf, 2}, {"BF16", at::kBFloat16, 2},
    {"I64", at::kLong, 8},   {"I32", at::kInt, 4},   {"U8", at::kByte, 1},  {"BOOL", at::kBool, 1},
};

const DtypeInfo* find_dtype(const std::string& name) {
  for (const auto& d : kDtypes) {
    if (name == d.name) return &d;
  }
  return nullptr;
}

uint64_t read_u64_le(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// a * b, or false on overflow.
bool mul_ok(uint64_t a, uint64_t b, uint64_t* out) {
  if (a != 0 && b > std::numeric_limits<uint64_t>::max() / a) return false;
  *out = a * b;
  return true;
}

}  // namespace

at::ScalarType safetensors_dtype(const std::string& name, const std::string& where) {
  const auto* d = find_dtype(name);
  if (!d) fail(where, "unsupported dtype \"" + name + "\" (expected F64, F32, F16, BF16, I64, I32, U8 or BOOL)");
  return d->type;
}

std::string safetensors_dtype_name(at::ScalarType type) {
  for (const auto& d : kDtypes) {
    if (d.type == type) return d.name;
  }
  throw std::invalid_argument(std::string("safetensors: cannot store dtype ") + c10::toString(type));
}

SafetensorsHeader parse_safetensors_header(const uint8_t* bytes, size_t available, uint64_t file_size,
                                           const std::string& where) {
  if (file_size < 8 || available < 8) {
    fail(where, "truncated: " + std::to_string(file_size) + " bytes, shorter than the 8-byte header length");
  }
  const uint64_t n = read_u64_le(bytes);
  if (n > kMaxHeader) fail(where, "header length " + std::to_string(n) + " exceeds the 100 MiB limit (not a safetensors file?)");
  if (n > file_size - 8) {
    fail(where, "truncated: header length " + std::to_string(n) + " but only " + std::to_string(file_size - 8) +
                    " bytes follow");
  }
  if (available < 8 + n) fail(where, "header not fully read");
  if (n == 0 || bytes[8] != '{') fail(where, "header is not a JSON object");
  json j;
  try {
    j = json::parse(bytes + 8, bytes + 8 + n);
  } catch (const json::parse_error& e) {
    fail(where, std::string("header is not valid JSON (") + e.what() + ")");
  }
  if (!j.is_object()) fail(where, "header is not a JSON object");

  SafetensorsHeader h;
  h.data_start = 8 + n;
  const uint64_t data_size = file_size - h.data_start;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& name = it.key();
    const auto& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) fail(where, "__metadata__: expected an object of strings");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) fail(where, "__metadata__: " + m.key() + ": expected a string, got " + m.value().dump());
        h.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string at_name = where + ": tensor \"" + name + "\"";
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets")) {
      fail(at_name, "expected {\"dtype\", \"shape\", \"data_offsets\"}, got " + v.dump().substr(0, 200));
    }
    SafetensorsEntry e;
    if (!v["dtype"].is_string()) fail(at_name, "dtype: expected a string");
    e.dtype = v["dtype"].get<std::string>();
    const auto* d = find_dtype(e.dtype);
    if (!d) safetensors_dtype(e.dtype, at_name);  // throws
    if (!v["shape"].is_array()) fail(at_name, "shape: expected an array of integers");
    uint64_t numel = 1;
    for (const auto& s : v["shape"]) {
      if (!s.is_number_unsigned()) fail(at_name, "shape: expected non-negative integers, got " + v["shape"].dump());
      const uint64_t dim = s.get<uint64_t>();
      if (dim > uint64_t(std::numeric_limits<int64_t>::max()) || !mul_ok(numel, dim, &numel)) {
        fail(at_name, "shape " + v["shape"].dump() + " overflows");
      }
      e.shape.push_back(static_cast<int64_t>(dim));
    }
    const auto& off = v["data_offsets"];
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned()) {
      fail(at_name, "data_offsets: expected [begin, end] non-negative integers, got " + off.dump());
    }
    e.begin = off[0].get<uint64_t>();
    e.end = off[1].get<uint64_t>();
    if (e.begin > e.end) fail(at_name, "data_offsets " + off.dump() + ": begin after end");
    if (e.end > data_size) {
      fail(at_name, "data_offsets " + off.dump() + " out of range: the data section has " +
                        std::to_string(data_size) + " bytes (file truncated?)");
    }
    uint64_t nbytes = 0;
    if (!mul_ok(numel, d->bytes, &nbytes) || nbytes != e.end - e.begin) {
      fail(at_name, "data_offsets " + off.dump() + " span " + std::to_string(e.end - e.begin) + " bytes, but " +
                        e.dtype + " " + v["shape"].dump() + " needs " + std::to_string(nbytes));
    }
    h.tensors.emplace(name, std::move(e));
  }
  // The entries must tile the data section: sorted by offset, each starts where the last ended.
  std::vector<std::pair<const std::string*, const SafetensorsEntry*>> order;
  for (const auto& [name, e] : h.tensors) order.emplace_back(&name, &e);
  std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
    return a.second->begin != b.second->begin ? a.second->begin < b.second->begin : a.second->end < b.second->end;
  });
  uint64_t pos = 0;
  for (size_t i = 0; i < order.size(); ++i) {
    const auto& [name, e] = order[i];
    if (e->begin < pos) {
      fail(where, "tensor \"" + *name + "\" [" + std::to_string(e->begin) + ", " + std::to_string(e->end) +
                      ") overlaps tensor \"" + *order[i - 1].first + "\"");
    }
    if (e->begin > pos) {
      fail(where, "tensor \"" + *name + "\" starts at " + std::to_string(e->begin) + ", leaving a hole at " +
                      std::to_string(pos));
    }
    pos = e->end;
  }
  if (pos != data_size) {
    fail(where, "the tensors cover " + std::to_string(pos) + " of the data section's " + std::to_string(data_size) +
                    " bytes");
  }
  return h;
}

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path, std::string("cannot open (") + std::strerror(errno) + ")");
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(path, "not a regular file");
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      ::close(fd);
      fail(path, std::string("cannot map (") + std::strerror(errno) + ")");
    }
    map_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
  try {
    header_ = parse_safetensors_header(map_, size_, size_, path);
  } catch (...) {
    if (map_) ::munmap(const_cast<uint8_t*>(map_), size_);
    map_ = nullptr;
    throw;
  }
}

SafetensorsFile::~SafetensorsFile() {
  if (map_) ::munmap(const_cast<uint8_t*>(map_), size_);
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  for (const auto& kv : header_.tensors) out.push_back(kv.first);
  return out;
}

at::Tensor SafetensorsFile::tensor(const std::string& name) const {
  const auto it = header_.tensors.find(name);
  if (it == header_.tensors.end()) fail(path_, "no tensor \"" + name + "\"");
  const auto& e = it->second;
  auto t = at::empty(e.shape, at::TensorOptions().dtype(safetensors_dtype(e.dtype, path_)));
  // Sizes were checked against the file when the header was parsed.
  if (e.end > e.begin) std::memcpy(t.data_ptr(), map_ + header_.data_start + e.begin, e.end - e.begin);
  if (t.scalar_type() == at::kBool && e.end > e.begin) {
    // A BOOL byte other than 0 or 1 is not a valid bool in memory.
    const auto* b = map_ + header_.data_start + e.begin;
    for (uint64_t i = 0; i < e.end - e.begin; ++i) {
      if (b[i] > 1) fail(path_, "tensor \"" + name + "\": BOOL byte " + std::to_string(b[i]) + " is neither 0 nor 1");
    }
  }
  return t;
}

SafetensorsCheckpoint::SafetensorsCheckpoint(const std::string& dir) : dir_(dir) {
  const fs::path single = fs::path(dir) / "model.safetensors";
  const fs::path index = fs::path(dir) / "model.safetensors.index.json";
  if (fs::exists(index)) {
    std::ifstream in(index);
    json j;
    try {
      j = json::parse(in);
    } catch (const json::parse_error& e) {
      fail(index.string(), std::string("not valid JSON (") + e.what() + ")");
    }
    if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object()) {
      fail(index.string(), "weight_map: expected an object {tensor name: shard file}");
    }
    std::map<std::string, size_t> shard_index;
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
      if (!it.value().is_string()) fail(index.string(), "weight_map: " + it.key() + ": expected a file name");
      const std::string shard = it.value().get<std::string>();
      if (shard.empty() || shard.find('/') != std::string::npos || shard == "." || shard == "..") {
        fail(index.string(), "weight_map: " + it.key() + ": expected a file name in " + dir + ", got \"" + shard + "\"");
      }
      auto [pos, added] = shard_index.emplace(shard, files_.size());
      if (added) files_.push_back(std::make_unique<SafetensorsFile>((fs::path(dir) / shard).string()));
      const auto& file = *files_[pos->second];
      if (!file.contains(it.key())) fail(file.path(), "has no tensor \"" + it.key() + "\" (listed in " + index.string() + ")");
      where_[it.key()] = pos->second;
    }
  } else if (fs::exists(single)) {
    files_.push_back(std::make_unique<SafetensorsFile>(single.string()));
    for (const auto& name : files_[0]->names()) where_[name] = 0;
  } else {
    fail(dir, "no model.safetensors or model.safetensors.index.json (a Hugging Face checkpoint directory "
              "saved with safe_serialization, the default)");
  }
}

std::vector<std::string> SafetensorsCheckpoint::names() const {
  std::vector<std::string> out;
  for (const auto& kv : where_) out.push_back(kv.first);
  return out;
}

std::string SafetensorsCheckpoint::file_of(const std::string& name) const {
  const auto it = where_.find(name);
  return it == where_.end() ? files_.empty() ? dir_ : files_.front()->path() : files_[it->second]->path();
}

at::Tensor SafetensorsCheckpoint::tensor(const std::string& name) const {
  const auto it = where_.find(name);
  if (it == where_.end()) fail(file_of(name), "missing tensor \"" + name + "\"");
  return files_[it->second]->tensor(name);
}

std::vector<int64_t> SafetensorsCheckpoint::shape(const std::string& name) const {
  const auto it = where_.find(name);
  if (it == where_.end()) fail(file_of(name), "missing tensor \"" + name + "\"");
  return files_[it->second]->header().tensors.at(name).shape;
}

std::map<std::string, at::Tensor> load_safetensors(const std::string& path) {
  const SafetensorsFile file(path);
  std::map<std::string, at::Tensor> out;
  for (const auto& name : file.names()) out[name] = file.tensor(name);
  return out;
}

std::string safetensors_bytes(const std::map<std::string, at::Tensor>& tensors,
                              const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<at::Tensor> data;
  uint64_t pos = 0;
  for (const auto& [name, t] : tensors) {
    if (name == "__metadata__") throw std::invalid_argument("safetensors: \"__metadata__\" is not a tensor name");
    auto c = t.detach().to(at::kCPU).contiguous();
    const uint64_t n = static_cast<uint64_t>(c.numel()) * c.element_size();
    header[name] = {{"dtype", safetensors_dtype_name(c.scalar_type())},
                    {"shape", c.sizes().vec()},
                    {"data_offsets", {pos, pos + n}}};
    pos += n;
    data.push_back(c);
  }
  std::string h = header.dump();
  h.append((8 - h.size() % 8) % 8, ' ');  // data section 8-byte aligned, as the reference writer does
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((uint64_t(h.size()) >> (8 * i)) & 0xff);
  out += h;
  out.reserve(out.size() + pos);
  for (const auto& c : data) out.append(static_cast<const char*>(c.data_ptr()), c.numel() * c.element_size());
  return out;
}

void save_safetensors(const std::map<std::string, at::Tensor>& tensors, const std::string& path,
                      const std::map<std::string, std::string>& metadata) {
  const std::string bytes = safetensors_bytes(tensors, metadata);
  const fs::path p(path);
  if (p.has_parent_path()) fs::create_directories(p.parent_path());
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) throw std::runtime_error(tmp + ": cannot write");
  }
  fs::rename(tmp, path);
}

}  // namespace lorascope
