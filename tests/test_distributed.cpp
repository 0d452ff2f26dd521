// Data parallel on c10d with Gloo over loopback: the collectives, the bucketed gradient
// all-reduce, sharded Muon against unsharded Muon (ranks as threads of this process), and
// `lorascope launch` runs of 2 processes against 1 process with the same global batch, resume
// from rank 0's checkpoints, and a killed rank ending the job with a message.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <functional>
#include <map>
#include <optional>
#include <thread>

#include "data/matrix_json.h"
#include "optim/muon.h"
#include "optim/state_io.h"
#include "train_fixtures.h"
#include "trainer/distributed.h"
#include "trainer/grad_reducer.h"

namespace lorascope {
namespace {

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// Runs body(rank's communicator) on `world` threads, each one rank of a Gloo group on loopback.
void run_ranks(int world, const std::function<void(Communicator&)>& body) {
  const int port = free_port();
  std::vector<std::thread> threads;
  for (int r = 0; r < world; ++r) {
    threads.emplace_back([&, r] {
      RendezvousInfo where;
      where.rank = r;
      where.world_size = world;
      where.master_port = port;
      DistributedOptions options;
      options.backend = "gloo";
      options.timeout = std::chrono::seconds(30);
      try {
        Communicator comm(where, options);
        body(comm);
      } catch (const std::exception& e) {
        ADD_FAILURE() << "rank " << r << ": " << e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
}

TEST(CommunicatorTest, GlooCollectivesOnLoopback) {
  run_ranks(3, [](Communicator& c) {
    const double r = c.rank();
    auto x = at::full({5}, r + 1, at::kDouble);
    c.all_reduce(x);
    EXPECT_TRUE(at::equal(x, at::full({5}, 6.0, at::kDouble)));  // 1 + 2 + 3
    // Two reductions in flight at once, waited in order.
    auto a = at::full({4}, r, at::kFloat), b = at::full({2}, 2 * r, at::kFloat);
    auto wa = c.all_reduce_async(a), wb = c.all_reduce_async(b);
    wa.wait();
    wb.wait();
    EXPECT_TRUE(at::equal(a, at::full({4}, 3.0f)));
    EXPECT_TRUE(at::equal(b, at::full({2}, 6.0f)));
    auto all = c.all_gather(at::arange(3, at::kFloat) + 10 * r);
    ASSERT_EQ(all.size(), 3u);
    for (int q = 0; q < 3; ++q) EXPECT_TRUE(at::equal(all[q], at::arange(3, at::kFloat) + 10.0f * q)) << q;
    auto y = c.rank() == 1 ? at::tensor({7.0f, 8.0f}) : at::zeros({2});
    c.broadcast(y, 1);
    EXPECT_TRUE(at::equal(y, at::tensor({7.0f, 8.0f})));
    c.barrier();
  });
}

TEST(CommunicatorTest, EnvironmentIsReadLikeTorchrun) {
  RendezvousInfo r;
  ::unsetenv("WORLD_SIZE");
  EXPECT_FALSE(rendezvous_from_env(&r));  // a plain run
  ::setenv("WORLD_SIZE", "4", 1);
  ::setenv("RANK", "3", 1);
  ::setenv("LOCAL_RANK", "1", 1);
  ::setenv("MASTER_ADDR", "10.0.0.7", 1);
  ::setenv("MASTER_PORT", "23456", 1);
  ASSERT_TRUE(rendezvous_from_env(&r));
  EXPECT_EQ(r.rank, 3);
  EXPECT_EQ(r.world_size, 4);
  EXPECT_EQ(r.local_rank, 1);
  EXPECT_EQ(r.master_addr, "10.0.0.7");
  EXPECT_EQ(r.master_port, 23456);
  ::setenv("RANK", "4", 1);
  EXPECT_THROW(rendezvous_from_env(&r), ConfigError);  // rank >= world size
  ::setenv("RANK", "x", 1);
  EXPECT_THROW(rendezvous_from_env(&r), ConfigError);
  for (const char* v : {"WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"}) ::unsetenv(v);
}

// Two micro-batches per step, the second armed; several buckets (small bucket_bytes); rank 2
// has no rows in the second micro-batch and runs no backward there. The reduced .grad must be
// the float64 sum over ranks and micro-batches of d loss / d param.
TEST(GradReducerTest, SumsGradientsOverRanksAndMicroBatches) {
  const int world = 3;
  auto data = [](int rank, int micro) {  // (rows, 4) inputs; rank 2 gets none in micro-batch 1
    auto gen = at::make_generator<at::CPUGeneratorImpl>(static_cast<uint64_t>(100 + 10 * rank + micro));
    return at::randn({rank == 2 && micro == 1 ? 0 : 3 + rank, 4}, gen, at::kDouble);
  };
  auto loss_of = [](const at::Tensor& x, const at::Tensor& W, const at::Tensor& b, const at::Tensor& v) {
    return (at::tanh(at::matmul(x, W) + b) * v).sum();  // W (4, 5), b (5), v (5)
  };
  auto init = [] {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(9);
    return std::vector<at::Tensor>{at::randn({4, 5}, gen, at::kDouble).requires_grad_(),
                                   at::randn({5}, gen, at::kDouble).requires_grad_(),
                                   at::randn({5}, gen, at::kDouble).requires_grad_()};
  };
  // Reference: one process, every rank's rows.
  auto ref = init();
  for (int r = 0; r < world; ++r) {
    for (int m = 0; m < 2; ++m) {
      auto x = data(r, m);
      if (x.size(0) > 0) loss_of(x, ref[0], ref[1], ref[2]).backward();
    }
  }
  for (bool overlap : {true, false}) {
    run_ranks(world, [&](Communicator& c) {
      auto p = init();
      GradReducer reducer(p, c, /*bucket_bytes=*/48, overlap);  // 48 bytes: one or two tensors a bucket
      EXPECT_GE(reducer.bucket_count(), 2u);
      for (int step = 0; step < 2; ++step) {
        for (auto& t : p) t.mutable_grad() = at::Tensor();
        for (int m = 0; m < 2; ++m) {
          if (m == 1) reducer.arm();
          auto x = data(c.rank(), m);
          if (x.size(0) > 0) loss_of(x, p[0], p[1], p[2]).backward();
        }
        reducer.finish();
        for (size_t i = 0; i < p.size(); ++i) {
          ASSERT_TRUE(p[i].grad().defined());
          const double err = (p[i].grad() - ref[i].grad()).abs().max().item<double>();
          EXPECT_LT(err, 1e-12) << "overlap " << overlap << " rank " << c.rank() << " param " << i;
        }
      }
    });
  }
}

// Mixed shapes: groups of 3, 2, 1 and 1 matrices, so ranks get uneven shares and some none.
std::vector<at::Tensor> muon_params() {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(11);
  std::vector<at::Tensor> ps;
  for (auto shape : std::vector<std::vector<int64_t>>{{4, 6}, {6, 4}, {4, 6}, {5, 5}, {6, 4}, {4, 6}, {3, 7}}) {
    ps.push_back(at::randn(shape, gen, at::kFloat));
  }
  return ps;
}

void set_grads(std::vector<at::Tensor>& ps, int step) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(static_cast<uint64_t>(50 + step));
  for (auto& p : ps) p.mutable_grad() = at::randn(p.sizes(), gen, at::kFloat);
}

TEST(ShardedMuonTest, SameUpdateAsUnsharded) {
  MuonOptions options;
  options.lr = 0.05;
  options.momentum = 0.9;
  options.nesterov = true;
  options.weight_decay = 0.1;
  options.lr_scaling = LrScaling::Original;
  auto ref = muon_params();
  Muon unsharded(ref, options);
  for (int step = 0; step < 3; ++step) {
    set_grads(ref, step);
    unsharded.step();
  }
  for (int world : {2, 3}) {
    run_ranks(world, [&](Communicator& c) {
      auto ps = muon_params();
      Muon muon(ps, options);
      int gathers = 0;
      muon.set_sharding({c.rank(), c.world_size(), [&](const at::Tensor& t) {
                           ++gathers;
                           return c.all_gather(t);
                         }});
      for (int step = 0; step < 3; ++step) {
        set_grads(ps, step);
        muon.step();
      }
      EXPECT_EQ(gathers, 3);  // one all-gather per step (one dtype)
      double worst = 0;
      for (size_t i = 0; i < ps.size(); ++i) worst = std::max(worst, (ps[i] - ref[i]).abs().max().item<double>());
      // Float32 Newton-Schulz on a batch of a different size: a few ulps of |W| ~ 1.
      EXPECT_LT(worst, 1e-6) << "world " << world << " rank " << c.rank();
      const auto a = muon.state_dict(), b = unsharded.state_dict();
      for (const auto& [k, v] : b) EXPECT_TRUE(at::equal(a.at(k), v)) << k;  // momentum replicated
    });
  }
}

// ---- the lorascope binary: 2 processes through `lorascope launch` ----

struct Proc {
  int code = -1;
  std::string err;
};

Proc run_binary(const std::string& args, const fs::path& err_path) {
  const std::string cmd = std::string(LORASCOPE_BINARY) + " " + args + " >/dev/null 2>" + err_path.string();
  const int status = std::system(cmd.c_str());
  std::ifstream in(err_path);
  return {WEXITSTATUS(status), std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>())};
}

pid_t spawn(const std::vector<std::string>& args, const std::map<std::string, std::string>& env,
            const fs::path& err_path) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
    std::freopen("/dev/null", "w", stdout);
    std::freopen(err_path.c_str(), "w", stderr);
    std::vector<std::string> all = {LORASCOPE_BINARY};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& s : all) argv.push_back(s.data());
    argv.push_back(nullptr);
    ::execv(LORASCOPE_BINARY, argv.data());
    std::_Exit(127);
  }
  return pid;
}

// The exit status within timeout_s, or nullopt (the process is then killed).
std::optional<int> wait_for(pid_t pid, double timeout_s) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  while (std::chrono::steady_clock::now() < end) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) return status;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  return std::nullopt;
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

int64_t logged_steps(const fs::path& metrics) {
  int64_t n = 0;
  std::ifstream in(metrics);
  for (std::string line; std::getline(in, line);) n += line.find("\"loss\"") != std::string::npos;
  return n;
}

struct DataParallelFixture : Fixture {
  DataParallelFixture() : Fixture("distributed") { base = pretrain(); }
  std::string base;
  // Writes the config; returns its path.
  fs::path config(const json& doc, const std::string& name) const {
    const auto path = dir / (name + ".json");
    std::ofstream(path) << doc.dump();
    return path;
  }
};

double rel(double a, double b) { return std::abs(a - b) / std::max(1e-12, std::abs(b)); }

// Same losses, gradient norms and adapter spectra line by line, and the same final weights, as
// far as float32 sums in another order allow. Prints the largest differences.
void expect_same_run(const fs::path& one, const fs::path& two, int64_t last_step) {
  const auto r1 = records(one / "metrics.jsonl"), r2 = records(two / "metrics.jsonl");
  ASSERT_EQ(r1.size(), r2.size());
  double loss = 0, gnorm = 0, sv = 0, weights = 0;
  for (size_t i = 0; i < r1.size(); ++i) {
    ASSERT_EQ(r1[i]["step"], r2[i]["step"]) << "line " << i;
    if (r1[i].contains("loss")) {
      loss = std::max(loss, rel(r2[i]["loss"], r1[i]["loss"]));
      gnorm = std::max(gnorm, rel(r2[i]["grad_norm"], r1[i]["grad_norm"]));
      EXPECT_EQ(r1[i]["tokens"], r2[i]["tokens"]);  // the same global batches
    }
    ASSERT_EQ(r1[i].contains("adapters"), r2[i].contains("adapters")) << "line " << i;
    if (!r1[i].contains("adapters")) continue;
    for (auto& [name, a] : r1[i]["adapters"].items()) {
      const auto& b = r2[i]["adapters"][name];
      const double top = a["sv"][0];
      for (size_t k = 0; k < a["sv"].size(); ++k) {
        sv = std::max(sv, std::abs(b["sv"][k].get<double>() - a["sv"][k].get<double>()) / std::max(top, 1e-12));
      }
    }
  }
  const std::string ckpt = "checkpoints/step_" + std::to_string(last_step) + "/trained.pt";  // what trains (issue 15: checkpoints no longer hold the frozen base)
  auto w1 = load_tensor_dict((one / ckpt).string()), w2 = load_tensor_dict((two / ckpt).string());
  ASSERT_EQ(w1.size(), w2.size());
  for (const auto& [k, v] : w1) weights = std::max(weights, (w2.at(k) - v).abs().max().item<double>());
  std::printf("max relative difference: loss %.2e, grad_norm %.2e, adapter sv %.2e; max |dW| %.2e\n",
              loss, gnorm, sv, weights);
  EXPECT_LT(loss, 1e-5);
  EXPECT_LT(gnorm, 1e-4);
  EXPECT_LT(sv, 1e-4);
  EXPECT_LT(weights, 1e-5);
}

TEST(DataParallelTest, TwoRanksMatchOneProcessWithMuonAndResumeFromRankZero) {
  DataParallelFixture fx;
  auto doc = fx.finetune_doc(fx.base);
  doc["train"] = {{"max_steps", 10}, {"batch_size", 7}, {"checkpoint_every", 4}, {"log_every", 1},
                  {"eval_every", 5}, {"eval_batches", 2}};  // 7 rows: shares of 3 and 4
  doc["monitor"] = {{"every", 2}};
  const auto cfg = fx.config(doc, "muon");
  const auto err = fx.dir / "err.txt";
  const std::string finetune = "--threads 1 finetune --config " + cfg.string() + " --out ";
  const std::string launch = "launch --nproc 2 --master-port 0 -- ";
  auto one = run_binary(finetune + (fx.dir / "one").string(), err);
  ASSERT_EQ(one.code, 0) << one.err;
  auto two = run_binary(launch + finetune + (fx.dir / "two").string(), err);
  ASSERT_EQ(two.code, 0) << two.err;
  const auto run1 = fx.dir / "one/run", run2 = fx.dir / "two/run";
  expect_same_run(run1, run2, 10);
  const auto summary = read_json_file((run2 / "summary.json").string());
  EXPECT_EQ(summary["distributed"]["world_size"], 2);
  EXPECT_EQ(summary["distributed"]["shard_muon"], true);
  EXPECT_TRUE(summary.contains("validation"));  // rank 0 evaluated

  // Halted after step 6 (last checkpoint at 4), resumed by both ranks from rank 0's files.
  auto halted = run_binary(launch + finetune + (fx.dir / "resumed").string() +
                           " --set train.halt_at_step=6", err);
  ASSERT_EQ(halted.code, 3) << halted.err;
  auto resumed = run_binary(launch + finetune + (fx.dir / "resumed").string() + " --resume", err);
  ASSERT_EQ(resumed.code, 0) << resumed.err;
  const auto a = records(run2 / "metrics.jsonl"), b = records(fx.dir / "resumed/run/metrics.jsonl");
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i], b[i]) << "line " << i;  // same ranks, same sums
}

TEST(DataParallelTest, TwoRanksMatchOneProcessWithAdamWAndGradAccumulation) {
  DataParallelFixture fx;
  auto doc = fx.finetune_doc(fx.base);
  doc["optim"] = {{"name", "adamw"}, {"lr", 3e-3}};
  doc["train"] = {{"max_steps", 8}, {"batch_size", 8}, {"grad_accum", 2}, {"log_every", 1}};
  doc["monitor"] = {{"every", 2}};
  const auto cfg = fx.config(doc, "adamw");
  const auto err = fx.dir / "err.txt";
  const std::string finetune = "--threads 1 finetune --config " + cfg.string() + " --out ";
  auto one = run_binary(finetune + (fx.dir / "one").string(), err);
  ASSERT_EQ(one.code, 0) << one.err;
  auto two = run_binary("launch --nproc 2 --master-port 0 -- " + finetune + (fx.dir / "two").string() +
                        " --no-overlap", err);
  ASSERT_EQ(two.code, 0) << two.err;
  expect_same_run(fx.dir / "one/run", fx.dir / "two/run", 8);
  EXPECT_FALSE(fs::exists(fx.dir / "two/run/metrics.jsonl.tmp"));
}

json endless(const DataParallelFixture& fx) {
  auto doc = fx.finetune_doc(fx.base);
  doc["train"] = {{"max_steps", 1000000}, {"batch_size", 8}, {"log_every", 1}};
  doc["monitor"] = {{"every", 1000}};
  return doc;
}

// Waits until rank 0 has logged `steps` training steps (the job is past rendezvous).
bool wait_for_steps(const fs::path& metrics, int64_t steps, double timeout_s) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  while (std::chrono::steady_clock::now() < end) {
    if (logged_steps(metrics) >= steps) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

// Ranks started as torchrun would (environment only, no lorascope launch to clean up): rank 1
// is killed mid-run; rank 0's next collective fails and the process exits with a message.
TEST(DataParallelTest, KilledRankEndsTheOtherWithAMessage) {
  DataParallelFixture fx;
  const auto cfg = fx.config(endless(fx), "endless");
  const std::string port = std::to_string(free_port());
  std::vector<pid_t> pids;
  for (int r = 0; r < 2; ++r) {
    pids.push_back(spawn({"--threads", "1", "finetune", "--config", cfg.string(), "--out",
                          (fx.dir / "killed").string(), "--dist-timeout", "20"},
                         {{"RANK", std::to_string(r)}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", std::to_string(r)},
                          {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", port}},
                         fx.dir / ("rank" + std::to_string(r) + ".err")));
  }
  ASSERT_TRUE(wait_for_steps(fx.dir / "killed/run/metrics.jsonl", 3, 60));
  ::kill(pids[1], SIGKILL);
  const auto t0 = std::chrono::steady_clock::now();
  auto status = wait_for(pids[0], 40);  // the 20 s collective timeout and a margin
  wait_for(pids[1], 5);
  ASSERT_TRUE(status.has_value()) << "rank 0 hung after rank 1 was killed";
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("rank 0 exited %.2f s after rank 1 was killed\n", waited);
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 1);
  const auto text = read_text(fx.dir / "rank0.err");
  // all_reduce (gradients, loss) or all_gather (sharded Muon), whichever rank 0 was in.
  EXPECT_NE(text.find("lorascope: rank 0: all_"), std::string::npos) << text;
  EXPECT_NE(text.find(" failed (a peer rank died, or did not answer within 20 s)"), std::string::npos) << text;
}

TEST(DataParallelTest, LaunchStopsEveryRankWhenOneDies) {
  DataParallelFixture fx;
  const auto cfg = fx.config(endless(fx), "endless");
  const auto err = fx.dir / "launch.err";
  const pid_t launcher = spawn({"launch", "--nproc", "2", "--master-port", "0", "--grace", "2", "--",
                                "--threads", "1", "finetune", "--config", cfg.string(), "--out",
                                (fx.dir / "killed").string()},
                               {}, err);
  ASSERT_TRUE(wait_for_steps(fx.dir / "killed/run/metrics.jsonl", 3, 60)) << read_text(err);
  const auto text = read_text(err);
  const auto at = text.find("rank 1 of 2: pid ");
  ASSERT_NE(at, std::string::npos) << text;
  const pid_t rank1 = std::stoi(text.substr(at + 17));
  ::kill(rank1, SIGKILL);
  auto status = wait_for(launcher, 30);
  ASSERT_TRUE(status.has_value()) << "launch did not stop: " << read_text(err);
  EXPECT_TRUE(WIFEXITED(*status));
  EXPECT_EQ(WEXITSTATUS(*status), 128 + SIGKILL);  // the first failure's code
  const auto after = read_text(err);
  EXPECT_NE(after.find("rank 1 (pid " + std::to_string(rank1) + ") was killed by signal 9; stopping the other ranks"),
            std::string::npos) << after;
}

}  // namespace
}  // namespace lorascope
