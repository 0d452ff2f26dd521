// The trainer's spectral geometry and TensorBoard logging (issue 20): monitor.geometry_every adds
// each adapter's geometry against its frozen base (trainer/geometry_monitor.h) to the metrics
// records when due, equal to a direct float64 computation on the full matrices; and
// logging.tensorboard writes an event file holding exactly the records of metrics.jsonl.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "tests/error_of.h"
#include "tests/memory_sink.h"
#include "tests/tensorboard_records.h"
#include "tests/train_fixtures.h"
#include "trainer/tensorboard_sink.h"
#include "trainer/train_hooks.h"
#include "trainer/train_session.h"

namespace lorascope {
namespace {

json geometry_doc(const Fixture& fx, const std::string& base, int64_t geometry_every) {
  auto doc = fx.finetune_doc(base);
  doc["train"] = {{"max_steps", 4}, {"batch_size", 8}, {"log_every", 1}};
  doc["monitor"] = {{"every", 1}, {"geometry_every", geometry_every}, {"base_k", 2}, {"intruder_epsilon", 0.99}};
  return doc;
}

// The in-memory loop with the monitor; returns the records (step 0's first).
std::vector<json> monitored_run(const Fixture& fx, const json& doc, Session& s, json* summary = nullptr) {
  s.cfg = TrainConfig::from_json(fx.spec(doc).config);
  setup(s, (fx.dir / "never_written").string());
  MemorySink sink;
  Hooks hooks;
  hooks.push_back(divergence_policy());
  hooks.push_back(adapter_monitor());
  hooks.push_back(metrics_logger());
  const auto out = train(s, TrainState{}, sink, hooks);
  EXPECT_EQ(out.status, "completed");
  if (summary) *summary = out.summary;
  return sink.records;
}

double mean_cos2(const at::Tensor& Q1, const at::Tensor& Q2) {
  const auto cos = at::linalg_svdvals(Q1.t().matmul(Q2));
  return cos.pow(2).mean().item<double>();
}

TEST(TrainGeometryTest, FieldsJoinTheAdaptersWhenDueAndMatchAFloat64Computation) {
  Fixture fx("traingeom");
  const auto base = fx.pretrain();
  Session s;
  json summary;
  const auto recs = monitored_run(fx, geometry_doc(fx, base, 2), s, &summary);
  ASSERT_EQ(recs.size(), 5u);  // step 0 (on start), then steps 1..4
  for (size_t i = 0; i < recs.size(); ++i) {
    ASSERT_EQ(recs[i]["step"], static_cast<int64_t>(i));
    for (const auto& [name, a] : recs[i]["adapters"].items()) {
      EXPECT_TRUE(a.contains("erank")) << name;
      EXPECT_EQ(a.contains("intruders"), i % 2 == 0) << "step " << i << " " << name;  // steps 0, 2, 4
    }
  }
  const auto& first = *recs[0]["adapters"].begin();  // B = 0: nothing to align, W itself has no intruder
  EXPECT_TRUE(first["align_left"].is_null());
  EXPECT_EQ(first["intruders"], 0);
  EXPECT_TRUE(first["drift_left"].is_null());

  // Step 4 against the full matrices in float64: the adapters are as the last step left them.
  const AdapterRef& a = s.adapters().at(0);
  const json& got = recs[4]["adapters"][a.name];
  const auto W = s.roles.find(a.name + ".weight")->tensor.detach().to(at::kDouble);
  const auto D = a.B.detach().to(at::kDouble).matmul(a.A.detach().to(at::kDouble)) * a.scaling;
  const auto [Uw, Sw, Vwh] = at::linalg_svd(W, false);
  const auto [Ud, Sd, Vdh] = at::linalg_svd(D, false);
  const int64_t r = a.A.size(0), k = 2;  // monitor.base_k
  ASSERT_GT(Sd[r - 1].item<double>(), Sd[0].item<double>() * 1e-4);  // delta W has full rank r
  const auto Uk = Uw.slice(1, 0, k), Vk = Vwh.slice(0, 0, k).t();
  EXPECT_NEAR(got["align_left"].get<double>(), mean_cos2(Ud.slice(1, 0, r), Uk), 1e-9);
  EXPECT_NEAR(got["align_right"].get<double>(), mean_cos2(Vdh.slice(0, 0, r).t(), Vk), 1e-9);
  EXPECT_EQ(got["angles_left"].size(), static_cast<size_t>(k));
  const auto p = Sd.slice(0, 0, r) / Sd.slice(0, 0, r).sum();
  EXPECT_NEAR(got["sv_entropy"].get<double>(), -(p * p.log()).sum().item<double>(), 1e-9);
  // Intruders: top-10 left singular vectors of W + delta W whose largest |cos| with W's is < 0.99
  // (epsilon this high so that 4 steps already leave intruders: a count that can be wrong).
  const auto [Ut, St, Vth] = at::linalg_svd(W + D, false);
  const int64_t top = std::min<int64_t>(10, St.size(0));
  const auto max_cos = Ut.slice(1, 0, top).t().matmul(Uw).abs().amax(1);
  int64_t intruders = 0;
  double intruder_sv = 0;
  for (int64_t i = 0; i < top; ++i) {
    const double c = max_cos[i].item<double>();
    EXPECT_GT(std::abs(c - 0.99), 1e-6) << "a cosine at epsilon: the count is not robust";
    if (c < 0.99) ++intruders, intruder_sv = std::max(intruder_sv, St[i].item<double>());
  }
  ASSERT_GT(intruders, 0);
  EXPECT_EQ(got["intruders"].get<int64_t>(), intruders);
  EXPECT_NEAR(got["intruder_sv"].get<double>(), intruder_sv, 1e-9 * St[0].item<double>());
  EXPECT_TRUE(got["drift_left"].is_number());  // steps 2 and 4 both have delta W != 0
  EXPECT_GT(summary["geometry_cache_bytes"].get<int64_t>(), 0);

  // Off (the default): spectra only, no geometry, no cache.
  Session off;
  json off_summary;
  for (const auto& rec : monitored_run(fx, geometry_doc(fx, base, 0), off, &off_summary)) {
    for (const auto& [name, st] : rec["adapters"].items()) EXPECT_FALSE(st.contains("intruders")) << name;
  }
  EXPECT_FALSE(off_summary.contains("geometry_cache_bytes"));
}

// monitor.base_svd_dtype=float32 reaches the monitor: the same run (the monitor does not change
// training) logs the same geometry within float32's rounding of W's singular vectors (the bound
// of tests/test_adapter_geometry.cpp, 4 u sqrt(k), u = 2^-24, k = monitor.base_k = 2) and caches
// half the bytes.
TEST(TrainGeometryTest, Float32BaseCacheLogsTheFloat64GeometryInHalfTheBytes) {
  Fixture fx("traingeom32");
  const auto base = fx.pretrain();
  auto doc = geometry_doc(fx, base, 2);
  Session s64, s32;
  json sum64, sum32;
  const auto r64 = monitored_run(fx, doc, s64, &sum64);
  doc["monitor"]["base_svd_dtype"] = "float32";
  const auto r32 = monitored_run(fx, doc, s32, &sum32);
  ASSERT_EQ(r64.size(), r32.size());
  const double tol = 4 * std::ldexp(1.0, -24) * std::sqrt(2.0);
  int64_t compared = 0;
  for (size_t i = 0; i < r64.size(); ++i) {
    EXPECT_EQ(r64[i].value("loss", json()), r32[i].value("loss", json())) << "step " << i;  // step 0 has none
    for (const auto& [name, a] : r64[i].at("adapters").items()) {
      const json& b = r32[i].at("adapters").at(name);
      if (!a.contains("intruders")) continue;
      EXPECT_EQ(a.at("intruders"), b.at("intruders")) << name;
      EXPECT_EQ(a.at("drift_left"), b.at("drift_left")) << name;  // delta W alone
      for (const char* key : {"align_left", "align_right"}) {
        if (a.at(key).is_null()) {
          EXPECT_TRUE(b.at(key).is_null()) << name << " " << key;
          continue;
        }
        EXPECT_NEAR(a.at(key).get<double>(), b.at(key).get<double>(), tol) << name << " " << key;
        ++compared;
      }
      for (const char* key : {"angles_left", "angles_right"}) {
        ASSERT_EQ(a.at(key).size(), b.at(key).size()) << name << " " << key;
        for (size_t j = 0; j < a.at(key).size(); ++j) {
          EXPECT_NEAR(a.at(key).at(j).get<double>(), b.at(key).at(j).get<double>(), tol) << name << " " << key;
        }
      }
    }
  }
  EXPECT_GT(compared, 0);
  const double ratio = sum32.at("geometry_cache_bytes").get<double>() / sum64.at("geometry_cache_bytes").get<double>();
  EXPECT_GT(ratio, 0.5);  // S stays float64
  EXPECT_LT(ratio, 0.51);
}

TEST(TrainGeometryTest, RangesAreCheckedNamingTheKey) {
  Fixture fx("traingeomkeys");
  auto doc = fx.finetune_doc("unused");
  doc["monitor"]["intruder_epsilon"] = 1.5;
  EXPECT_NE(error_of([&] { fx.spec(doc); }).find("monitor.intruder_epsilon"), std::string::npos);
  doc["monitor"]["intruder_epsilon"] = 0.5;
  doc["monitor"]["geometry_every"] = -1;
  EXPECT_NE(error_of([&] { fx.spec(doc); }).find("monitor.geometry_every"), std::string::npos);
  doc["monitor"]["geometry_every"] = 5;
  doc["monitor"]["base_svd_dtype"] = "bfloat16";
  EXPECT_NE(error_of([&] { fx.spec(doc); }).find("monitor.base_svd_dtype: expected one of float64, float32"),
            std::string::npos);
  doc["monitor"]["base_svd_dtype"] = "float32";
  doc["logging"] = {{"tensorboard", "yes"}};
  EXPECT_NE(error_of([&] { fx.spec(doc); }).find("logging.tensorboard"), std::string::npos);
}

// logging.tensorboard: one event per metrics.jsonl line, each the encoding of that very record
// (every scalar and histogram, at the record's step, at start + wall_s).
TEST(TrainGeometryTest, TensorBoardEventsHoldTheRecordsOfMetricsJsonl) {
  Fixture fx("traintb");
  const auto base = fx.pretrain();
  auto doc = geometry_doc(fx, base, 2);
  doc["logging"] = {{"tensorboard", true}};
  const auto dir = fx.dir / "run";
  ASSERT_EQ(run_train(fx.spec(doc), dir.string(), false).status, "completed");
  std::vector<std::string> events;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().filename().string().find("tfevents") != std::string::npos) events.push_back(e.path().string());
  }
  ASSERT_EQ(events.size(), 1u);
  std::vector<json> lines;
  std::ifstream in(dir / "metrics.jsonl");
  for (std::string line; std::getline(in, line);) lines.push_back(json::parse(line));
  const auto records = read_records(events[0]);
  ASSERT_EQ(records.size(), lines.size() + 1);  // + the file_version event
  double start = NAN;
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string& r = records[i + 1];
    ASSERT_GE(r.size(), 9u);
    ASSERT_EQ(r[0], '\x09');  // Event.wall_time, a double
    double wall_time;
    std::memcpy(&wall_time, r.data() + 1, 8);
    if (i == 0) start = wall_time - lines[0]["wall_s"].get<double>();
    EXPECT_NEAR(wall_time - lines[i]["wall_s"].get<double>(), start, 1e-3);
    EXPECT_EQ(r, encode_summary_event(wall_time, lines[i]["step"], tensorboard_values(lines[i]))) << "line " << i;
  }
  bool geometry_tag = false;
  for (const auto& v : tensorboard_values(lines.back())) geometry_tag = geometry_tag || v.tag.rfind("align_left/", 0) == 0;
  EXPECT_TRUE(geometry_tag);
  // Off (the default): no event file.
  doc["logging"]["tensorboard"] = false;
  const auto plain = fx.dir / "plain";
  ASSERT_EQ(run_train(fx.spec(doc), plain.string(), false).status, "completed");
  for (const auto& e : fs::directory_iterator(plain)) EXPECT_EQ(e.path().filename().string().find("tfevents"), std::string::npos);
}

}  // namespace
}  // namespace lorascope
