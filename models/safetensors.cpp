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

#include "util/json_file.h"

namespace lorascope {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

[[noreturn]] void fail(const std::string& where, const std::string& what) {
  throw std::runtime_error(where + ": " + what);
}

struct DtypeInfo {
  const char* name;
  at::ScalarType type;
};
constexpr DtypeInfo kDtypes[] = {
    {"F64", at::kDouble}, {"F32", at::kFloat}, {"F16", at::kHalf}, {"BF16", at::kBFloat16},
    {"I64", at::kLong},   {"I32", at::kInt},   {"U8", at::kByte},  {"BOOL", at::kBool},
};

const DtypeInfo* find_dtype(const std::string& name) {
  for (const auto& d : kDtypes) {
    if (name == d.name) return &d;
  }
  return nullptr;
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
    const json j = read_json_file(index.string());
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
