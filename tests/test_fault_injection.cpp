// Runs survive faults: the lorascope binary, fine-tuning as a child process, is SIGKILLed at
// seeded random moments and once inside a checkpoint write (LORASCOPE_FAULT,
// trainer/fault_injection.h), resumed each time, and ends exactly where an uninterrupted run
// ends, with a metrics.jsonl free of torn or repeated lines. And the same config and seed twice
// give byte-identical metrics.jsonl apart from the wall-clock fields.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <regex>
#include <thread>

#include "optim/state_io.h"
#include "tests/train_fixtures.h"

namespace lorascope {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Starts `lorascope --threads 1 ARGS...` with stdout and stderr into log (appended) and, when
// fault is not empty, LORASCOPE_FAULT=fault.
pid_t spawn(const std::vector<std::string>& args, const fs::path& log, const std::string& fault = "") {
  std::vector<std::string> all = {LORASCOPE_BINARY, "--threads", "1"};
  all.insert(all.end(), args.begin(), args.end());
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    if (fault.empty()) {
      ::unsetenv("LORASCOPE_FAULT");
    } else {
      ::setenv("LORASCOPE_FAULT", fault.c_str(), 1);
    }
    std::vector<char*> argv;
    for (auto& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

int wait_for(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return status;
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

int occurrences(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t at = 0; (at = text.find(needle, at)) != std::string::npos; ++at) ++n;
  return n;
}

// Polls until the log holds `count` occurrences of `needle`, i.e. the child has got that far.
// False when the child exited first (its status in *status) or after 120 s.
bool await_text(const fs::path& log, const std::string& needle, int count, pid_t pid, int* status) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (std::chrono::steady_clock::now() < deadline) {
    if (occurrences(read_text(log), needle) >= count) return true;
    if (::waitpid(pid, status, WNOHANG) == pid) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return false;
}

// The file's bytes with the values of the wall-clock fields blanked.
std::string without_wall_clock(const fs::path& p) {
  static const std::regex wall("\"(wall_s|tokens_per_s)\":[^,}]*");
  return std::regex_replace(read_text(p), wall, "\"$1\":_");
}

// Every line is a complete JSON object and steps strictly increase: nothing torn or repeated.
void expect_clean_jsonl(const fs::path& p) {
  std::ifstream in(p);
  int64_t previous = -1;
  int n = 0;
  for (std::string line; std::getline(in, line); ++n) {
    const auto rec = json::parse(line, nullptr, false);
    ASSERT_FALSE(rec.is_discarded()) << p << ": torn line " << n << ": " << line;
    ASSERT_GT(rec.at("step").get<int64_t>(), previous) << p << ": repeated step at line " << n;
    previous = rec["step"];
  }
  const auto text = read_text(p);
  EXPECT_TRUE(text.empty() || text.back() == '\n') << p << ": last line torn";
}

struct FineTuneSetup {
  Fixture fx;
  fs::path config;
  FineTuneSetup() {
    auto doc = fx.finetune_doc(fx.pretrain());
    doc["train"]["max_steps"] = 40;
    doc["train"]["checkpoint_every"] = 4;
    doc["train"]["eval_every"] = 8;
    doc["name"] = "r";
    config = fx.dir / "finetune.json";
    std::ofstream(config) << doc.dump(2);
  }
  std::vector<std::string> args(const fs::path& out) const {
    return {"finetune", "--config", config.string(), "--out", out.string(), "--resume"};
  }
};

TEST(FaultInjectionTest, KilledRunsResumeToTheUninterruptedResult) {
  FineTuneSetup setup;
  const auto& dir = setup.fx.dir;
  // The uninterrupted run; `full` is its time from the start of training (after process start-up,
  // loading and tokenizing, which can take most of a short run) to its exit.
  const pid_t ref = spawn(setup.args(dir / "ref"), dir / "ref.log");
  int ref_status = 0;
  ASSERT_TRUE(await_text(dir / "ref.log", "starting fresh", 1, ref, &ref_status)) << read_text(dir / "ref.log");
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(wait_for(ref), 0) << read_text(dir / "ref.log");
  const double full = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  const fs::path out = dir / "faulted", log = dir / "faulted.log";
  // Killed inside its second checkpoint write (step 8): the temporary is left half-written.
  const int status = wait_for(spawn(setup.args(out), log, "kill_in_checkpoint:2"));
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << read_text(log);
  bool half_written = false;
  for (const auto& e : fs::directory_iterator(out / "r" / "checkpoints")) {
    half_written |= e.path().filename().string() == ".tmp_step_8";
  }
  EXPECT_TRUE(half_written);
  // Then killed at seeded random moments of training (timed from the child's "resuming from"
  // line, so no kill is wasted on start-up), each resumed run a little further along.
  std::mt19937_64 rng(20261127);
  std::uniform_real_distribution<double> when(0.15, 0.6);
  int killed = 0;
  for (int round = 0; round < 4; ++round) {
    const int resumed_before = occurrences(read_text(log), "resuming from");
    const pid_t pid = spawn(setup.args(out), log);
    int st = 0;
    if (await_text(log, "resuming from", resumed_before + 1, pid, &st)) {
      std::this_thread::sleep_for(std::chrono::duration<double>(when(rng) * full));
      ::kill(pid, SIGKILL);
      st = wait_for(pid);
    }
    killed += WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
    if (fs::exists(out / "r" / "metrics.jsonl")) expect_clean_jsonl(out / "r" / "metrics.jsonl");
  }
  EXPECT_GE(killed, 1);
  ASSERT_EQ(wait_for(spawn(setup.args(out), log)), 0) << read_text(log);

  const std::string text = read_text(log);
  const int resumes = occurrences(text, "resuming from");
  std::printf("killed %d of 4 random rounds (uninterrupted training %.2fs); resumed from a checkpoint %d times\n",
              killed, full, resumes);
  EXPECT_EQ(resumes, 5) << text;  // each of the 4 rounds and the final run
  expect_clean_jsonl(out / "r" / "metrics.jsonl");
  const auto ra = records(dir / "ref" / "r" / "metrics.jsonl"), rb = records(out / "r" / "metrics.jsonl");
  ASSERT_EQ(ra.size(), rb.size());
  for (size_t i = 0; i < ra.size(); ++i) EXPECT_EQ(ra[i], rb[i]) << "line " << i;
  const auto wa = load_tensor_dict((dir / "ref" / "r" / "checkpoints" / "step_40" / "trained.pt").string());
  const auto wb = load_tensor_dict((out / "r" / "checkpoints" / "step_40" / "trained.pt").string());
  ASSERT_EQ(wa.size(), wb.size());
  int adapters = 0;
  for (const auto& [k, v] : wa) {
    EXPECT_TRUE(at::equal(v, wb.at(k))) << k;
    adapters += k.find("lora_") != std::string::npos;
  }
  EXPECT_EQ(adapters, 8);  // lora_A and lora_B of q_proj and v_proj in 2 layers
  const auto sa = json::parse(read_text(dir / "ref" / "r" / "summary.json"));
  const auto sb = json::parse(read_text(out / "r" / "summary.json"));
  for (const char* key : {"final_train_loss", "validation", "test", "mean_erank", "steps"}) {
    EXPECT_EQ(sa[key], sb[key]) << key;
  }
}

TEST(FaultInjectionTest, SameConfigAndSeedGiveByteIdenticalMetrics) {
  FineTuneSetup setup;
  const auto& dir = setup.fx.dir;
  for (const char* run : {"one", "two"}) {
    ASSERT_EQ(wait_for(spawn(setup.args(dir / run), dir / "log")), 0) << read_text(dir / "log");
    ASSERT_EQ(wait_for(spawn({"mf", "--out", (dir / ("mf_" + std::string(run))).string(), "--set",
                              "train.steps=200", "--set", "name=m"},
                             dir / "log")),
              0)
        << read_text(dir / "log");
  }
  const auto a = without_wall_clock(dir / "one" / "r" / "metrics.jsonl");
  EXPECT_GT(a.size(), 1000u);
  EXPECT_EQ(a, without_wall_clock(dir / "two" / "r" / "metrics.jsonl"));
  const auto m = without_wall_clock(dir / "mf_one" / "m" / "metrics.jsonl");
  EXPECT_GT(m.size(), 1000u);
  EXPECT_EQ(m, without_wall_clock(dir / "mf_two" / "m" / "metrics.jsonl"));
}

}  // namespace
}  // namespace lorascope
