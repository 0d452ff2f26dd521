#include "models/safetensors_header.h"

#include <algorithm>
#include <limits>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "util/json_file.h"

namespace lorascope {

using nlohmann::json;

namespace {

// A header larger than this is not a weight file (the reference implementation's limit).
constexpr uint64_t kMaxHeader = 100ull << 20;

[[noreturn]] void fail(const std::string& where, const std::string& what) {
  throw std::runtime_error(where + ": " + what);
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

uint64_t safetensors_dtype_bytes(const std::string& name) {
  static const std::map<std::string, uint64_t> bytes = {
      {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"I32", 4}, {"U8", 1}, {"BOOL", 1}};
  const auto it = bytes.find(name);
  return it == bytes.end() ? 0 : it->second;
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
  const json j = parse_json_text(std::string(bytes + 8, bytes + 8 + n), where + ": header");
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
    const uint64_t elem_bytes = safetensors_dtype_bytes(e.dtype);
    if (elem_bytes == 0) {
      fail(at_name, "unsupported dtype \"" + e.dtype + "\" (expected F64, F32, F16, BF16, I64, I32, U8 or BOOL)");
    }
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
    if (!mul_ok(numel, elem_bytes, &nbytes) || nbytes != e.end - e.begin) {
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

}  // namespace lorascope
