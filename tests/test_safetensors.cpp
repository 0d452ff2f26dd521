// safetensors: the writer's bytes against the format spec, round trips of every dtype, shards,
// and each kind of bad file -> an error naming the file and the problem.
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "error_of.h"
#include "data_fixtures.h"
#include "models/safetensors.h"

namespace lorascope {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string le64(uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return s;
}

// A file laid out by hand: 8-byte little-endian length, header, data.
std::string file_bytes(const std::string& header, const std::string& data) { return le64(header.size()) + header + data; }

std::string floats(std::initializer_list<float> v) {
  std::string s(v.size() * 4, '\0');
  std::memcpy(s.data(), std::data(v), s.size());
  return s;
}

SafetensorsHeader parse(const std::string& bytes) {
  return parse_safetensors_header(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), bytes.size(), "f.st");
}

TEST(SafetensorsTest, HandBuiltFileIsReadAsTheSpecSays) {
  TempDir dir("st_hand");
  const std::string header =
      R"({"b":{"dtype":"I32","shape":[],"data_offsets":[8,12]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
      R"("__metadata__":{"format":"pt"}})";
  std::string data = floats({1.5f, -2.0f});
  const int32_t seven = 7;
  data.append(reinterpret_cast<const char*>(&seven), 4);
  const auto path = dir.write("x.safetensors", file_bytes(header, data));
  const SafetensorsFile f(path);
  EXPECT_EQ(f.header().metadata.at("format"), "pt");
  EXPECT_EQ(f.header().data_start, 8 + header.size());
  const auto a = f.tensor("a");
  EXPECT_EQ(a.scalar_type(), at::kFloat);
  ASSERT_EQ(a.sizes(), at::IntArrayRef({2}));
  EXPECT_EQ(a[0].item<float>(), 1.5f);
  EXPECT_EQ(a[1].item<float>(), -2.0f);
  const auto b = f.tensor("b");
  EXPECT_EQ(b.dim(), 0);
  EXPECT_EQ(b.item<int32_t>(), 7);
}

TEST(SafetensorsTest, WriterBytesFollowTheSpec) {
  const auto t = at::arange(6, at::kFloat).view({2, 3});
  const std::string bytes = safetensors_bytes({{"w", t}}, {{"format", "pt"}});
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);
  ASSERT_LE(8 + n, bytes.size());
  EXPECT_EQ((8 + n) % 8, 0u) << "data section 8-byte aligned";
  const auto header = json::parse(bytes.substr(8, n));
  EXPECT_EQ(header["__metadata__"]["format"], "pt");
  EXPECT_EQ(header["w"]["dtype"], "F32");
  EXPECT_EQ(header["w"]["shape"], json::array({2, 3}));
  EXPECT_EQ(header["w"]["data_offsets"], json::array({0, 24}));
  ASSERT_EQ(bytes.size(), 8 + n + 24);
  float v[6];
  std::memcpy(v, bytes.data() + 8 + n, 24);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(v[i], float(i)) << "row-major little-endian";
}

TEST(SafetensorsTest, EveryDtypeRoundTripsBitExactly) {
  TempDir dir("st_roundtrip");
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  std::map<std::string, at::Tensor> in = {
      {"f64", at::randn({3, 4}, gen, at::kDouble)},
      {"f32", at::randn({5}, gen, at::kFloat)},
      {"f16", at::randn({2, 2}, gen, at::kFloat).to(at::kHalf)},
      {"bf16", at::randn({4, 1}, gen, at::kFloat).to(at::kBFloat16)},
      {"i64", at::randint(-1000, 1000, {7}, gen, at::kLong)},
      {"i32", at::randint(-1000, 1000, {2, 3}, gen, at::kLong).to(at::kInt)},
      {"u8", at::randint(0, 255, {9}, gen, at::kLong).to(at::kByte)},
      {"bool", at::randint(0, 2, {3}, gen, at::kLong).to(at::kBool)},
      {"empty", at::zeros({0, 3}, at::kFloat)},
      {"strided", at::arange(12, at::kFloat).view({3, 4}).t()},  // stored contiguous
  };
  const std::string path = (dir.path / "sub" / "all.safetensors").string();
  save_safetensors(in, path, {{"note", "x"}});
  const auto out = load_safetensors(path);
  ASSERT_EQ(out.size(), in.size());
  for (const auto& [name, t] : in) {
    const auto& o = out.at(name);
    EXPECT_EQ(o.scalar_type(), t.scalar_type()) << name;
    EXPECT_EQ(o.sizes(), t.sizes()) << name;
    EXPECT_TRUE(at::equal(o, t.contiguous())) << name;
  }
  EXPECT_EQ(SafetensorsFile(path).header().metadata.at("note"), "x");
}

TEST(SafetensorsTest, ShardedCheckpointThroughTheIndex) {
  TempDir dir("st_shards");
  save_safetensors({{"a", at::ones({2})}}, (dir.path / "model-00001-of-00002.safetensors").string());
  save_safetensors({{"b", at::full({3}, 2.0)}, {"c", at::zeros({1})}},
                   (dir.path / "model-00002-of-00002.safetensors").string());
  dir.write("model.safetensors.index.json",
            R"({"metadata": {"total_size": 24}, "weight_map": {"a": "model-00001-of-00002.safetensors",
                "b": "model-00002-of-00002.safetensors", "c": "model-00002-of-00002.safetensors"}})");
  const SafetensorsCheckpoint ck(dir.path.string());
  EXPECT_EQ(ck.names(), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_TRUE(at::equal(ck.tensor("b"), at::full({3}, 2.0)));
  EXPECT_EQ(ck.shape("a"), (std::vector<int64_t>{2}));
  EXPECT_NE(ck.file_of("c").find("model-00002-of-00002"), std::string::npos);

  // The index names a tensor its shard lacks, or a path outside the directory.
  dir.write("model.safetensors.index.json", R"({"weight_map": {"z": "model-00001-of-00002.safetensors"}})");
  EXPECT_NE(error_of([&] { SafetensorsCheckpoint c(dir.path.string()); }).find("has no tensor \"z\""), std::string::npos);
  dir.write("model.safetensors.index.json", R"({"weight_map": {"a": "../x.safetensors"}})");
  EXPECT_NE(error_of([&] { SafetensorsCheckpoint c(dir.path.string()); }).find("expected a file name"), std::string::npos);
  TempDir empty("st_empty");
  EXPECT_NE(error_of([&] { SafetensorsCheckpoint c(empty.path.string()); }).find("no model.safetensors"),
            std::string::npos);
}

TEST(SafetensorsTest, BadFilesGiveClearErrors) {
  const std::string ok_header = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  const std::string data = floats({1, 2});
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"abc", "f.st: truncated: 3 bytes"},
      {le64(1000) + "{}", "f.st: truncated: header length 1000 but only 2 bytes follow"},
      {le64(uint64_t(1) << 60) + "{}", "exceeds the 100 MiB limit"},
      {file_bytes("[1,2]", ""), "f.st: header is not a JSON object"},
      {file_bytes("{\"a\":", ""), "f.st: header: not valid JSON"},
      // A number beyond double's range is nlohmann's out_of_range, not a parse_error (fuzz_safetensors).
      {file_bytes("{\"a\": 1e888888}", ""), "f.st: header: not valid JSON"},
      {file_bytes(ok_header, data.substr(0, 6)), "f.st: tensor \"a\": data_offsets [0,8] out of range: the data section has 6 bytes"},
      {file_bytes(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", data), "needs 12"},
      {file_bytes(R"({"a":{"dtype":"F8_E4M3","shape":[8],"data_offsets":[0,8]}})", data), "unsupported dtype \"F8_E4M3\""},
      {file_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}})",
                  data),
       "overlaps"},
      {file_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", data), "leaving a hole at 0"},
      {file_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", data), "cover 4 of the data section's 8"},
      {file_bytes(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,8]}})", data), "shape: expected non-negative"},
      {file_bytes(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,8]}})", data),
       "overflows"},
      {file_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", data), "begin after end"},
      {file_bytes(R"({"a":{"dtype":"F32","shape":[2]}})", data), "expected {\"dtype\", \"shape\", \"data_offsets\"}"},
      {file_bytes(R"({"__metadata__":{"n":1}})", ""), "__metadata__: n: expected a string"},
  };
  for (const auto& [bytes, message] : cases) {
    const std::string e = error_of([&] { parse(bytes); });
    EXPECT_NE(e.find(message), std::string::npos) << "expected \"" << message << "\", got \"" << e << "\"";
  }
  EXPECT_NO_THROW(parse(file_bytes(ok_header, data)));

  // Through the file reader: a truncated copy of a good file names its path.
  TempDir dir("st_bad");
  const std::string good = safetensors_bytes({{"w", at::ones({4, 4})}});
  const auto path = dir.write("cut.safetensors", good.substr(0, good.size() - 3));
  const std::string e = error_of([&] { SafetensorsFile f(path); });
  EXPECT_NE(e.find(path + ": tensor \"w\": data_offsets [0,64] out of range"), std::string::npos) << e;
  EXPECT_NE(error_of([&] { SafetensorsFile f((dir.path / "none").string()); }).find("cannot open"), std::string::npos);
  EXPECT_NE(error_of([&] { SafetensorsFile(dir.write("bool.safetensors",
                                                     file_bytes(R"({"m":{"dtype":"BOOL","shape":[2],"data_offsets":[0,2]}})",
                                                                std::string("\x01\x07", 2))))
                                .tensor("m"); })
                .find("BOOL byte 7"),
            std::string::npos);
}

}  // namespace
}  // namespace lorascope
