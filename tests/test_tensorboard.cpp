// TensorBoard event files (trainer/tensorboard_writer.h, trainer/tensorboard_sink.h): CRC-32C
// against published check values, records byte for byte against tensorboard's own writer
// (tests/golden/tensorboard/events.json, from tests/golden/make_tensorboard.py), and the tags a
// metrics record becomes.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include "tests/tensorboard_records.h"
#include "trainer/tensorboard_sink.h"
#include "trainer/tensorboard_writer.h"

namespace lorascope {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string hex(const std::string& bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
  }
  return out;
}

TEST(TensorBoardTest, Crc32cMatchesPublishedCheckValues) {
  // The CRC catalogue's check value, and RFC 3720 §B.4's iSCSI test vectors.
  EXPECT_EQ(crc32c("123456789", 9), 0xE3069283u);
  std::string zeros(32, '\0'), ones(32, '\xff'), up(32, '\0'), down(32, '\0');
  for (int i = 0; i < 32; ++i) {
    up[i] = static_cast<char>(i);
    down[i] = static_cast<char>(31 - i);
  }
  EXPECT_EQ(crc32c(zeros.data(), 32), 0x8A9136AAu);
  EXPECT_EQ(crc32c(ones.data(), 32), 0x62A8AB43u);
  EXPECT_EQ(crc32c(up.data(), 32), 0x46DD794Eu);
  EXPECT_EQ(crc32c(down.data(), 32), 0x113FDB5Cu);
  EXPECT_EQ(crc32c("", 0), 0u);
  // TFRecord's mask: rotate right by 15, add 0xa282ead8.
  const uint32_t c = crc32c("123456789", 9);
  EXPECT_EQ(masked_crc32c("123456789", 9), ((c >> 15) | (c << 17)) + 0xa282ead8u);
}

TEST(TensorBoardTest, RecordsEqualTensorboardsOwnBytes) {
  const std::string path = std::string(LORASCOPE_SOURCE_DIR) + "/tests/golden/tensorboard/events.json";
  std::ifstream in(path);
  ASSERT_TRUE(in) << path << " missing: run tests/golden/make_tensorboard.py";
  const auto golden = json::parse(in)["records"];
  Histogram h;
  h.min = 0.25;
  h.max = 3.5;
  h.num = 4;
  h.sum = 6.0;
  h.sum_squares = 15.3125;
  h.bucket_limit = {1.875, 3.5};
  h.bucket = {2, 2};
  EXPECT_EQ(hex(tfrecord(encode_file_version_event(1700000000.5))), golden["file_version"]);
  EXPECT_EQ(hex(tfrecord(encode_summary_event(1700000001.25, 40,
                                              {{"train/loss", 2.3125f, std::nullopt},
                                               {"train/lr", 0.0f, std::nullopt},
                                               {"eval/accuracy", -0.1f, std::nullopt}}))),
            golden["scalars"]);
  EXPECT_EQ(hex(tfrecord(encode_summary_event(1700000002.0, 123456789012,
                                              {{"sv/model.layers.0.self_attn.q_proj", std::nullopt, h}}))),
            golden["histogram"]);
  EXPECT_EQ(hex(tfrecord(encode_summary_event(3.0, 0, {{"t", 1.0f, std::nullopt}}))), golden["step_zero"]);
}

TEST(TensorBoardTest, HistogramBucketsHoldEveryValue) {
  const auto h = make_histogram({3.0, 0.5, 1.0, 1.0, 2.5, 0.75});
  EXPECT_EQ(h.min, 0.5);
  EXPECT_EQ(h.max, 3.0);
  EXPECT_EQ(h.num, 6);
  EXPECT_DOUBLE_EQ(h.sum, 8.75);
  EXPECT_DOUBLE_EQ(h.sum_squares, 9 + 0.25 + 1 + 1 + 6.25 + 0.5625);
  ASSERT_EQ(h.bucket.size(), 6u);
  ASSERT_EQ(h.bucket_limit.size(), 6u);
  EXPECT_EQ(h.bucket_limit.back(), 3.0);
  double total = 0;
  for (double b : h.bucket) total += b;
  EXPECT_EQ(total, 6);
  EXPECT_EQ(h.bucket.front(), 2);  // 0.5 and 0.75 are <= 0.5 + 2.5 / 6
  const auto one = make_histogram({2.0, 2.0});
  ASSERT_EQ(one.bucket.size(), 1u);
  EXPECT_EQ(one.bucket[0], 2);
}

TEST(TensorBoardTest, RecordFieldsBecomeTags) {
  const json record = json::parse(R"({
    "step": 20, "epoch": 1, "loss": 2.5, "lr": 0.001, "grad_norm": 0.7, "tokens_per_s": 900.5,
    "wall_s": 12.0, "note": "text", "flag": true, "missing": null,
    "eval": {"loss": 2.0, "accuracy": 0.75},
    "adapters": {"model.layers.0.self_attn.q_proj": {"sv": [3.0, 1.0], "erank": 1.9, "intruders": 0},
                 "model.layers.0.self_attn.v_proj": {"sv": [2.0, null], "erank": 1.0}},
    "factors": [{"fro": 1.5}, {"fro": 2.5}]})");
  std::map<std::string, float> scalars;
  std::map<std::string, Histogram> histos;
  for (const auto& v : tensorboard_values(record)) {
    if (v.simple_value) scalars[v.tag] = *v.simple_value;
    if (v.histo) histos[v.tag] = *v.histo;
  }
  const std::map<std::string, float> expected = {
      {"train/epoch", 1.0f}, {"train/loss", 2.5f}, {"train/lr", 0.001f}, {"train/grad_norm", 0.7f},
      {"train/tokens_per_s", 900.5f}, {"eval/loss", 2.0f}, {"eval/accuracy", 0.75f},
      {"sv/model.layers.0.self_attn.q_proj/1", 3.0f}, {"sv/model.layers.0.self_attn.q_proj/2", 1.0f},
      {"erank/model.layers.0.self_attn.q_proj", 1.9f}, {"intruders/model.layers.0.self_attn.q_proj", 0.0f},
      {"sv/model.layers.0.self_attn.v_proj/1", 2.0f}, {"erank/model.layers.0.self_attn.v_proj", 1.0f},
      {"factors/1/fro", 1.5f}, {"factors/2/fro", 2.5f}};
  EXPECT_EQ(scalars, expected);
  ASSERT_EQ(histos.size(), 2u);
  EXPECT_EQ(histos["sv/model.layers.0.self_attn.q_proj"].num, 2);
  EXPECT_EQ(histos["sv/model.layers.0.self_attn.v_proj"].num, 1);  // null left out
  // Indices are zero-padded to the list's width, so TensorBoard sorts them in order.
  json wide = {{"step", 1}, {"sv", std::vector<double>(12, 1.0)}};
  std::vector<std::string> tags;
  for (const auto& v : tensorboard_values(wide)) tags.push_back(v.tag);
  ASSERT_EQ(tags.size(), 13u);
  EXPECT_EQ(tags[1], "sv/01");
  EXPECT_EQ(tags[12], "sv/12");
}

TEST(TensorBoardTest, SinkWritesOneEventPerRecordAfterTheVersion) {
  const auto dir = fs::temp_directory_path() / "lorascope_tensorboard_sink";
  fs::remove_all(dir);
  std::string path;
  {
    TensorBoardSink sink(dir.string(), 1000.0);
    sink.write(json{{"step", 0}, {"loss", 3.0}, {"wall_s", 0.5}});
    sink.write(json{{"loss", 1.0}});  // no step: skipped
    sink.write(json{{"step", 10}, {"loss", 2.0}, {"wall_s", 7.0}});
    path = sink.path();
  }
  EXPECT_NE(fs::path(path).filename().string().find("events.out.tfevents."), std::string::npos);
  const auto records = read_records(path);
  ASSERT_EQ(records.size(), 3u);
  EXPECT_NE(records[0].find("brain.Event:2"), std::string::npos);
  EXPECT_EQ(records[1], encode_summary_event(1000.5, 0, {{"train/loss", 3.0f, std::nullopt}}));
  EXPECT_EQ(records[2], encode_summary_event(1007.0, 10, {{"train/loss", 2.0f, std::nullopt}}));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace lorascope
