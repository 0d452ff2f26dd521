#include "trainer/tensorboard_writer.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <stdexcept>

namespace lorascope {

namespace {

std::array<uint32_t, 256> make_crc_table() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    t[i] = c;
  }
  return t;
}

// Protobuf wire format (https://protobuf.dev/programming-guides/encoding/).
enum WireType : uint8_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void put_key(std::string& out, uint32_t field, WireType type) { put_varint(out, (uint64_t{field} << 3) | type); }

template <typename T>
void put_le(std::string& out, T v) {  // little-endian, as on every machine this builds for
  char bytes[sizeof(T)];
  std::memcpy(bytes, &v, sizeof(T));
  out.append(bytes, sizeof(T));
}

void put_double(std::string& out, uint32_t field, double v) {
  put_key(out, field, kFixed64);
  put_le(out, v);
}

void put_bytes(std::string& out, uint32_t field, const std::string& bytes) {
  put_key(out, field, kLengthDelimited);
  put_varint(out, bytes.size());
  out += bytes;
}

void put_packed_doubles(std::string& out, uint32_t field, const std::vector<double>& v) {
  if (v.empty()) return;  // proto3 omits empty repeated fields
  std::string body;
  for (double x : v) put_le(body, x);
  put_bytes(out, field, body);
}

// proto3 leaves fields at their default (0, empty) out; so does tensorboard's writer.
void put_double_nonzero(std::string& out, uint32_t field, double v) {
  if (v != 0.0 || std::signbit(v)) put_double(out, field, v);
}

std::string encode_histogram(const Histogram& h) {
  std::string out;
  put_double_nonzero(out, 1, h.min);
  put_double_nonzero(out, 2, h.max);
  put_double_nonzero(out, 3, h.num);
  put_double_nonzero(out, 4, h.sum);
  put_double_nonzero(out, 5, h.sum_squares);
  put_packed_doubles(out, 6, h.bucket_limit);
  put_packed_doubles(out, 7, h.bucket);
  return out;
}

std::string encode_value(const SummaryValue& v) {
  std::string out;
  if (!v.tag.empty()) put_bytes(out, 1, v.tag);  // proto3 leaves an empty string out
  if (v.simple_value) {
    put_key(out, 2, kFixed32);
    put_le(out, *v.simple_value);
  }
  if (v.histo) put_bytes(out, 5, encode_histogram(*v.histo));
  return out;
}

std::string event_header(double wall_time, int64_t step) {
  std::string out;
  put_double_nonzero(out, 1, wall_time);
  if (step != 0) {
    put_key(out, 2, kVarint);
    put_varint(out, static_cast<uint64_t>(step));  // two's complement for negatives, as protobuf does
  }
  return out;
}

}  // namespace

uint32_t crc32c(const void* data, size_t size) {
  static const auto table = make_crc_table();
  const auto* p = static_cast<const uint8_t*>(data);
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < size; ++i) c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

uint32_t masked_crc32c(const void* data, size_t size) {
  const uint32_t c = crc32c(data, size);
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

std::string tfrecord(const std::string& data) {
  std::string out;
  const uint64_t length = data.size();
  put_le(out, length);
  put_le(out, masked_crc32c(out.data(), 8));
  out += data;
  put_le(out, masked_crc32c(data.data(), data.size()));
  return out;
}

Histogram make_histogram(const std::vector<double>& values, int max_buckets) {
  Histogram h;
  if (values.empty()) return h;
  h.min = *std::min_element(values.begin(), values.end());
  h.max = *std::max_element(values.begin(), values.end());
  h.num = static_cast<double>(values.size());
  for (double v : values) {
    h.sum += v;
    h.sum_squares += v * v;
  }
  const int buckets = h.max > h.min ? std::max(1, std::min<int>(max_buckets, static_cast<int>(values.size()))) : 1;
  const double width = (h.max - h.min) / buckets;
  h.bucket.assign(buckets, 0.0);
  for (int b = 0; b < buckets; ++b) h.bucket_limit.push_back(b + 1 == buckets ? h.max : h.min + width * (b + 1));
  for (double v : values) {
    // The bucket whose right edge is the first >= v.
    const auto it = std::lower_bound(h.bucket_limit.begin(), h.bucket_limit.end(), v);
    h.bucket[std::min<size_t>(it - h.bucket_limit.begin(), buckets - 1)] += 1.0;
  }
  return h;
}

std::string encode_file_version_event(double wall_time) {
  std::string out = event_header(wall_time, 0);
  put_bytes(out, 3, "brain.Event:2");
  return out;
}

std::string encode_summary_event(double wall_time, int64_t step, const std::vector<SummaryValue>& values) {
  std::string summary;
  for (const auto& v : values) put_bytes(summary, 1, encode_value(v));
  std::string out = event_header(wall_time, step);
  put_bytes(out, 5, summary);
  return out;
}

double unix_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

TensorBoardWriter::TensorBoardWriter(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(dir, ec);
  char host[256] = "localhost";
  gethostname(host, sizeof(host) - 1);
  const double now = unix_seconds();
  // A per-process counter, as PyTorch's writer has, so two writers opened within one second
  // never share (and truncate) a file.
  static std::atomic<int> counter{0};
  path_ = (fs::path(dir) / ("events.out.tfevents." + std::to_string(static_cast<int64_t>(now)) + "." + host + "." +
                            std::to_string(::getpid()) + "." + std::to_string(counter++) + ".lorascope")).string();
  file_ = std::fopen(path_.c_str(), "wb");
  if (!file_) throw std::runtime_error(path_ + ": cannot create the TensorBoard event file");
  const std::string record = tfrecord(encode_file_version_event(now));
  if (std::fwrite(record.data(), 1, record.size(), file_) != record.size() || std::fflush(file_) != 0) {
    throw std::runtime_error(path_ + ": write failed");
  }
}

TensorBoardWriter::~TensorBoardWriter() {
  if (file_) std::fclose(file_);
}

void TensorBoardWriter::write(int64_t step, const std::vector<SummaryValue>& values, double wall_time) {
  if (values.empty()) return;
  const std::string record = tfrecord(encode_summary_event(wall_time, step, values));
  if (std::fwrite(record.data(), 1, record.size(), file_) != record.size() || std::fflush(file_) != 0) {
    throw std::runtime_error(path_ + ": write failed");
  }
}

}  // namespace lorascope
