// Reads an event file's TFRecords back, checking the framing: lengths and both CRCs of every
// record (tests/test_tensorboard.cpp checks the payloads byte for byte against tensorboard's own
// writer; tests/interop/check_tensorboard.py reads files with tensorboard itself).
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "trainer/tensorboard_writer.h"

namespace lorascope {

inline std::vector<std::string> read_records(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos + 12 <= bytes.size()) {
    uint64_t length;
    uint32_t length_crc, data_crc;
    std::memcpy(&length, bytes.data() + pos, 8);
    std::memcpy(&length_crc, bytes.data() + pos + 8, 4);
    EXPECT_EQ(length_crc, masked_crc32c(bytes.data() + pos, 8));
    if (pos + 16 + length > bytes.size()) break;
    std::string data = bytes.substr(pos + 12, length);
    std::memcpy(&data_crc, bytes.data() + pos + 12 + length, 4);
    EXPECT_EQ(data_crc, masked_crc32c(data.data(), data.size()));
    out.push_back(data);
    pos += 16 + length;
  }
  EXPECT_EQ(pos, bytes.size());
  return out;
}

}  // namespace lorascope
