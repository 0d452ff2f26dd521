// TensorBoard event files, written here without TensorFlow.
//
// Why our own writer: Debian 12's archive has no C++ library for TensorBoard's format (no
// tensorboard, TFRecord or CRC-32C package; `apt-cache search` finds only python3-crc32c), and
// Debian's libprotobuf would need protoc and .proto copies for three small messages, next to a
// LibTorch that carries its own protobuf. The format is small and stable:
//
//  - A file is a sequence of TFRecords: uint64 length, uint32 masked CRC-32C of those 8 bytes,
//    the data, uint32 masked CRC-32C of the data (all little-endian). CRC-32C is the Castagnoli
//    CRC (reflected polynomial 0x82F63B78, RFC 3720 §B.4); mask(c) = ((c >> 15) | (c << 17)) +
//    0xa282ead8 (tensorflow/core/lib/hash/crc32c.h).
//  - Each record is an Event protobuf (tensorflow/core/util/event.proto), encoded here by hand:
//      Event          { 1: double wall_time, 2: int64 step, 3: string file_version, 5: Summary summary }
//      Summary        { 1: repeated Value value }
//      Summary.Value  { 1: string tag, 2: float simple_value, 5: HistogramProto histo }
//      HistogramProto { 1: double min, 2: max, 3: num, 4: sum, 5: sum_squares,
//                       6: packed double bucket_limit, 7: packed double bucket }
//    The first event of a file carries file_version "brain.Event:2".
//  - The file is DIR/events.out.tfevents.<unix seconds>.<host>.<pid>.<n>.lorascope (TensorBoard
//    reads every file whose name contains "tfevents").
// Scalars are simple_value (float32), which TensorBoard's readers, old and new, show as scalars.
// tests/test_tensorboard.cpp compares the bytes with tensorboard's own writer's
// (tests/golden/tensorboard/); tests/interop/check_tensorboard.py reads files back with
// tensorboard's EventAccumulator.
#pragma once

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

namespace lorascope {

uint32_t crc32c(const void* data, size_t size);
uint32_t masked_crc32c(const void* data, size_t size);
// data framed as one TFRecord.
std::string tfrecord(const std::string& data);

struct Histogram {
  double min = 0, max = 0, num = 0, sum = 0, sum_squares = 0;
  std::vector<double> bucket_limit;  // right edges; bucket i holds values in (limit[i-1], limit[i]]
  std::vector<double> bucket;        // counts
};
// Equal-width buckets over [min, max], at most max_buckets of them (one when all values agree).
Histogram make_histogram(const std::vector<double>& values, int max_buckets = 30);

struct SummaryValue {
  std::string tag;
  std::optional<float> simple_value;
  std::optional<Histogram> histo;
};

// Serialized Event messages (not framed).
std::string encode_file_version_event(double wall_time);
std::string encode_summary_event(double wall_time, int64_t step, const std::vector<SummaryValue>& values);

class TensorBoardWriter {
 public:
  // Creates the event file in dir (created if missing) and writes the file_version event.
  // Throws std::runtime_error naming the path.
  explicit TensorBoardWriter(const std::string& dir);
  ~TensorBoardWriter();
  TensorBoardWriter(const TensorBoardWriter&) = delete;
  TensorBoardWriter& operator=(const TensorBoardWriter&) = delete;

  // One event, written with one fwrite and flushed: a killed run leaves at most a torn last
  // record, which TensorBoard's reader stops at.
  void write(int64_t step, const std::vector<SummaryValue>& values, double wall_time);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
};

// Seconds since the Unix epoch, as TensorBoard's wall_time.
double unix_seconds();

}  // namespace lorascope
