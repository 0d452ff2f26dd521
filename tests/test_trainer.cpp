// The transformer recipes end to end on tiny synthetic data: resume equals an uninterrupted run,
// a tiny batch is overfit, and the adapter monitor equals a full SVD of delta W.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <regex>

#include "data/matrix_json.h"
#include "optim/state_io.h"
#include "tests/train_fixtures.h"
#include "trainer/adapter_monitor.h"
#include "trainer/checkpoint.h"
#include "trainer/file_integrity.h"
#include "trainer/autocast_guard.h"
#include "trainer/train_recipe.h"
#include "trainer/train_schema.h"

namespace lorascope {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

TEST(AdapterMonitorTest, SingularValuesEqualFullSvdOfScaledDeltaW) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  AdapterRef a{"x", at::randn({8, 40}, gen, at::kFloat), at::randn({30, 8}, gen, at::kFloat), 2.0};
  auto full = at::linalg_svdvals(2.0 * at::matmul(a.B.to(at::kDouble), a.A.to(at::kDouble)));
  auto st = adapter_stats(a);
  ASSERT_EQ(st.sv.size(), 8u);
  for (int i = 0; i < 8; ++i) EXPECT_NEAR(st.sv[i], full[i].item<double>(), 1e-9 * full[0].item<double>());
  a.B.zero_();  // PEFT init: delta W = 0
  EXPECT_EQ(adapter_stats(a).fro, 0.0);
}

TEST(AdapterMonitorTest, BatchedPathEqualsPerAdapterPath) {
  // Mixed shapes (three groups, one of a single adapter) and scalings: the stacked batch must
  // give each adapter its own values, in adapter order.
  auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
  std::vector<AdapterRef> adapters;
  const std::vector<std::pair<int64_t, int64_t>> shapes = {{30, 40}, {12, 40}, {30, 40}, {30, 40}, {12, 40}, {9, 5}};
  for (size_t i = 0; i < shapes.size(); ++i) {
    adapters.push_back({"a" + std::to_string(i), at::randn({4, shapes[i].second}, gen, at::kFloat),
                        at::randn({shapes[i].first, 4}, gen, at::kFloat), 0.5 + static_cast<double>(i)});
  }
  const auto looped = adapter_singular_values(adapters, false);
  const auto batched = adapter_singular_values(adapters, true);
  ASSERT_EQ(batched.size(), adapters.size());
  for (size_t i = 0; i < adapters.size(); ++i) {
    ASSERT_EQ(batched[i].size(), looped[i].size()) << i;
    for (size_t k = 0; k < looped[i].size(); ++k) {
      EXPECT_NEAR(batched[i][k], looped[i][k], 1e-10 * looped[i][0]) << i << "," << k;
    }
  }
  EXPECT_EQ(batched[5].size(), 4u);
}

TEST(TrainerTest, ResumeFromCheckpointContinuesTheSameTrajectory) {
  Fixture fx;
  const auto base = fx.pretrain();
  const auto doc = fx.finetune_doc(base);
  const auto a_dir = fx.dir / "a", b_dir = fx.dir / "b";
  // Killed after step 10 (last checkpoint at 6), then resumed.
  expect_resume_continues(fx, doc, 10, a_dir, b_dir);
  auto wa = load_tensor_dict((a_dir / "checkpoints/step_18/trained.pt").string());
  auto wb = load_tensor_dict((b_dir / "checkpoints/step_18/trained.pt").string());
  ASSERT_EQ(wa.size(), wb.size());
  for (const auto& [k, v] : wa) EXPECT_TRUE(at::equal(v, wb.at(k))) << k;
  auto summary = read_json_file((a_dir / "summary.json").string());
  EXPECT_EQ(summary["adapters"], 4);  // q_proj and v_proj in 2 layers
  EXPECT_TRUE(records(a_dir / "metrics.jsonl").back().contains("adapters"));
}

// References: the CRC catalogue's check value, and Python's zlib.crc32 of the same 3 MB
// (bytes (131 i + 7) mod 256), which spans several of file_crc32's 1 MiB reads.
TEST(FileIntegrityTest, Crc32MatchesZlib) {
  EXPECT_EQ(crc32_update(0, "123456789", 9), 0xCBF43926u);
  EXPECT_EQ(crc32_update(0, "", 0), 0u);
  std::string data(3000000, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>((i * 131 + 7) % 256);
  const auto path = fs::temp_directory_path() / ("lorascope_crc_" + std::to_string(::getpid()));
  std::ofstream(path, std::ios::binary) << data;
  uint64_t bytes = 0;
  EXPECT_EQ(file_crc32(path.string(), &bytes), 0x2134DB38u);
  EXPECT_EQ(bytes, 3000000u);
  EXPECT_EQ(crc32_update(crc32_update(0, data.data(), 1000), data.data() + 1000, data.size() - 1000),
            0x2134DB38u);  // continued over two pieces
  fs::remove(path);
}

// Checkpoints are verified against their manifest: the newest is truncated, --resume warns,
// falls back to the one before and still ends on the uninterrupted trajectory.
TEST(TrainerTest, DamagedNewestCheckpointFallsBackToThePreviousOne) {
  Fixture fx;
  const auto base = fx.pretrain();
  const auto doc = fx.finetune_doc(base);
  const auto a_dir = fx.dir / "a", b_dir = fx.dir / "b";
  ASSERT_EQ(run_train(fx.spec(doc), a_dir.string(), false).status, "completed");
  for (int step : {6, 12, 18}) {  // keep_checkpoints = 3 by default
    EXPECT_EQ(verify_checkpoint((a_dir / "checkpoints" / ("step_" + std::to_string(step))).string()), "");
  }
  ASSERT_EQ(run_train(fx.spec(doc, {"train.halt_at_step=14"}), b_dir.string(), false).status, "halted");
  const auto newest = b_dir / "checkpoints" / "step_12";
  fs::resize_file(newest / "trained.pt", fs::file_size(newest / "trained.pt") - 100);
  EXPECT_NE(verify_checkpoint(newest.string()).find("trained.pt"), std::string::npos);
  EXPECT_NE(verify_checkpoint(newest.string()).find("truncated"), std::string::npos);
  std::vector<std::string> rejected;
  EXPECT_EQ(latest_checkpoint(b_dir.string(), &rejected), (b_dir / "checkpoints" / "step_6").string());
  ASSERT_EQ(rejected.size(), 1u);

  testing::internal::CaptureStderr();
  const auto resumed = run_train(fx.spec(doc), b_dir.string(), true);
  const std::string err = testing::internal::GetCapturedStderr();
  ASSERT_EQ(resumed.status, "completed");
  EXPECT_NE(err.find("warning: skipping damaged checkpoint " + newest.string()), std::string::npos) << err;
  EXPECT_NE(err.find("resuming from " + (b_dir / "checkpoints" / "step_6").string()), std::string::npos) << err;
  const auto ra = records(a_dir / "metrics.jsonl"), rb = records(b_dir / "metrics.jsonl");
  ASSERT_EQ(ra.size(), rb.size());
  for (size_t i = 0; i < ra.size(); ++i) EXPECT_EQ(ra[i], rb[i]) << "line " << i;
  auto wa = load_tensor_dict((a_dir / "checkpoints/step_18/trained.pt").string());
  auto wb = load_tensor_dict((b_dir / "checkpoints/step_18/trained.pt").string());
  for (const auto& [k, v] : wa) EXPECT_TRUE(at::equal(v, wb.at(k))) << k;

  // A flipped byte (same size) fails the checksum.
  const auto last = a_dir / "checkpoints" / "step_18" / "optimizer.pt";
  {
    std::fstream f(last, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(40);
    const char c = static_cast<char>(f.get());
    f.seekp(40);
    f.put(static_cast<char>(c ^ 0x10));
  }
  EXPECT_NE(verify_checkpoint((a_dir / "checkpoints" / "step_18").string()).find("checksum mismatch"),
            std::string::npos);
}

TEST(TrainerTest, KeepsTheNewestKCheckpoints) {
  Fixture fx;
  const auto base = fx.pretrain();
  auto doc = fx.finetune_doc(base);
  doc["train"]["checkpoint_every"] = 3;
  doc["train"]["max_steps"] = 12;
  ASSERT_EQ(run_train(fx.spec(doc, {"train.keep_checkpoints=2"}), (fx.dir / "k").string(), false).status,
            "completed");
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(fx.dir / "k" / "checkpoints")) {
    names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"step_12", "step_9"}));
}

// train.nonfinite: a NaN gradient (injected at step 3) stops the run naming the step and the
// parameter, or under "skip" drops that step, counts it and trains the full number of steps.
TEST(TrainerTest, NonFiniteGradientStopsOrIsSkippedAndCounted) {
  Fixture fx;
  const auto base = fx.pretrain();
  auto doc = fx.finetune_doc(base);
  doc["train"]["max_steps"] = 8;
  doc["train"]["checkpoint_every"] = 0;
  ::setenv("LORASCOPE_FAULT", "nan_grad:3", 1);
  const auto stopped = run_train(fx.spec(doc), (fx.dir / "stop").string(), false);
  testing::internal::CaptureStderr();
  const auto skipped = run_train(fx.spec(doc, {"train.nonfinite=skip"}), (fx.dir / "skip").string(), false);
  const std::string err = testing::internal::GetCapturedStderr();
  ::unsetenv("LORASCOPE_FAULT");

  EXPECT_EQ(stopped.status, "diverged");
  EXPECT_EQ(stopped.summary["diverged_at_step"], 3);
  const std::string message = stopped.summary["message"];
  EXPECT_TRUE(std::regex_match(message, std::regex("gradient of [A-Za-z0-9_.]+ is not finite at step 3")))
      << message;
  EXPECT_EQ(records(fx.dir / "stop" / "metrics.jsonl").back()["step"], 3);  // nothing after it

  ASSERT_EQ(skipped.status, "completed");
  EXPECT_EQ(skipped.summary["skipped_steps"], 1);
  EXPECT_EQ(skipped.summary["steps"], 8);
  EXPECT_NE(err.find("is not finite at step 3; step skipped"), std::string::npos) << err;
  const auto lines = records(fx.dir / "skip" / "metrics.jsonl");
  for (const auto& r : lines) {
    if (!r.contains("loss")) continue;
    EXPECT_EQ(r.value("skipped_steps", 0), r["step"].get<int>() > 3 ? 1 : 0) << r.dump();
    EXPECT_TRUE(std::isfinite(r["loss"].get<double>()));
  }
}

TEST(TrainerTest, OverfitsATinyBatch) {
  Fixture fx;
  const auto base = fx.pretrain();
  auto doc = fx.finetune_doc(base);
  doc["optim"] = {{"name", "adamw"}, {"lr", 1e-2}};
  doc["data"]["limit"] = 10;
  doc["data"]["validation_fraction"] = 0.0;
  doc["data"]["test_fraction"] = 0.0;
  doc["train"] = {{"max_steps", 80}, {"batch_size", 10}, {"log_every", 10}};
  auto out = run_train(fx.spec(doc), (fx.dir / "overfit").string(), false);
  ASSERT_EQ(out.status, "completed");
  EXPECT_LT(out.summary["final_train_loss"].get<double>(), 0.05) << out.summary.dump();
}

// lora-learning-dynamics-matrix-factorization.md Sec. 5.2 puts LoRA on the classifier itself and
// trains nothing else: lora.targets=score with lora.train_head=false.
TEST(TrainerTest, LoraOnTheFrozenHeadTrainsOnlyTheAdapter) {
  Fixture fx;
  const auto base = fx.pretrain();
  auto doc = fx.finetune_doc(base);
  doc["lora"] = {{"r", 1}, {"alpha", 1}, {"targets", {"score"}}, {"init", "gaussian"},
                 {"init_scale", 1e-3}, {"train_head", false}};
  doc["optim"] = {{"name", "sgd"}, {"lr", 0.1}, {"momentum", 0.0}};
  doc["train"] = {{"max_steps", 3}, {"batch_size", 8}, {"log_every", 1}};
  auto out = run_train(fx.spec(doc), (fx.dir / "head").string(), false);
  ASSERT_EQ(out.status, "completed");
  EXPECT_EQ(out.summary["adapters"], 1);
  // lora_A (1 x 32) and lora_B (2 x 1) of the 2-label head (hidden 32), nothing else.
  EXPECT_EQ(out.summary["trainable_parameters"], 32 + 2);
  doc["lora"]["train_head"] = true;  // the default: the head trains in full besides its adapter
  auto full = run_train(fx.spec(doc), (fx.dir / "head_full").string(), false);
  EXPECT_EQ(full.summary["trainable_parameters"], 32 + 2 + 2 * 32);
}

TEST(AutocastTest, GuardRunsMatmulsInBf16AndRestoresFloat32) {
  auto a = at::randn({8, 8}), b = at::randn({8, 8});
  {
    AutocastGuard guard(at::kCPU, true);
    EXPECT_EQ(at::matmul(a, b).scalar_type(), at::kBFloat16);
  }
  EXPECT_EQ(at::matmul(a, b).scalar_type(), at::kFloat);
  AutocastGuard off(at::kCPU, false);
  EXPECT_EQ(at::matmul(a, b).scalar_type(), at::kFloat);
}

TEST(TrainerTest, Bf16AutocastTracksFloat32Training) {
  Fixture fx;
  const auto base = fx.pretrain();
  auto doc = fx.finetune_doc(base);
  doc["train"] = {{"max_steps", 6}, {"batch_size", 8}, {"log_every", 1}};
  ASSERT_EQ(run_train(fx.spec(doc), (fx.dir / "fp32").string(), false).status, "completed");
  ASSERT_EQ(run_train(fx.spec(doc, {"bf16=true"}), (fx.dir / "bf16").string(), false).status, "completed");
  const auto r32 = records(fx.dir / "fp32" / "metrics.jsonl"), r16 = records(fx.dir / "bf16" / "metrics.jsonl");
  ASSERT_EQ(r32.size(), r16.size());
  for (size_t i = 0; i < r32.size(); ++i) {
    if (!r32[i].contains("loss")) continue;
    const double l32 = r32[i]["loss"], l16 = r16[i]["loss"];
    EXPECT_NE(l32, l16);  // bf16 really ran
    EXPECT_NEAR(l16 / l32, 1.0, 0.05) << "step " << r32[i]["step"];  // bf16: ~3 significant digits
  }
}

TEST(TrainerTest, CompareCommandWritesTheReport) {
  Fixture fx;
  const auto base = fx.pretrain();
  auto doc = fx.finetune_doc(base);
  doc.erase("mode");
  doc.erase("optim");
  doc["train"] = {{"max_steps", 6}, {"batch_size", 8}, {"log_every", 2}};
  doc["runs"] = json::array({{{"name", "muon"}, {"optim.name", "muon"}, {"optim.lr", 0.02}},
                             {{"name", "adamw"}, {"optim.name", "adamw"}, {"optim.lr", 1e-3}}});
  const auto config = fx.dir / "compare.json";
  std::ofstream(config) << doc.dump();
  const auto out = fx.dir / "compare";
  const std::string cmd = std::string(LORASCOPE_BINARY) + " --threads 1 compare --config " +
                          config.string() + " --out " + out.string() + " > /dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  for (const char* f : {"report.md", "curves.png", "erank.png", "sv_muon.png", "sv_adamw.png", "index.json"}) {
    EXPECT_TRUE(fs::exists(out / f)) << f;
  }
  std::ifstream md(out / "report.md");
  std::string text((std::istreambuf_iterator<char>(md)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("| muon"), std::string::npos);
  EXPECT_NE(text.find("| adamw"), std::string::npos);
  // The per-adapter table of final effective ranks, one column per run.
  const auto at = text.find("## Effective rank of every adapter at the end");
  ASSERT_NE(at, std::string::npos) << text;
  EXPECT_NE(text.find("| adapter | muon (r=", at), std::string::npos) << text.substr(at);
  EXPECT_NE(text.find("| **mean** |", at), std::string::npos) << text.substr(at);
}

}  // namespace
}  // namespace lorascope
