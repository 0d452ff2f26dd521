// lorascope launch: starts the local ranks of a data-parallel job, like torchrun. Each child is
// this binary with the arguments after `--` and the environment of torch.distributed's env://
// rendezvous (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT). When a
// rank fails, the others are stopped (SIGTERM, SIGKILL after a grace period) and the launcher
// exits with the first failure's code (128 + signal for a killed rank).
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "apps/commands.h"
#include "trainer/config.h"

namespace lorascope::cli {

namespace {

struct LaunchArgs {
  int nproc = 1, nnodes = 1, node_rank = 0;
  std::string master_addr;
  int master_port = -1;
  double grace_s = 5;
  std::vector<std::string> command;
};

volatile sig_atomic_t g_signal = 0;
void remember_signal(int sig) { g_signal = sig; }

// A port that was free a moment ago on the loopback interface (single-node jobs).
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    if (fd >= 0) ::close(fd);
    throw std::runtime_error("launch: could not find a free port on 127.0.0.1");
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

std::string describe(int status) {
  if (WIFSIGNALED(status)) return "was killed by signal " + std::to_string(WTERMSIG(status));
  return "exited with code " + std::to_string(WEXITSTATUS(status));
}

int exit_code(int status) { return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status); }

int launch(const LaunchArgs& a) {
  if (a.node_rank >= a.nnodes) {
    throw ConfigError("launch: --node-rank: expected < --nnodes = " + std::to_string(a.nnodes) +
                      ", got " + std::to_string(a.node_rank));
  }
  const char* env_addr = std::getenv("MASTER_ADDR");
  const char* env_port = std::getenv("MASTER_PORT");
  const std::string addr = !a.master_addr.empty() ? a.master_addr
                           : (env_addr && *env_addr) ? env_addr : "127.0.0.1";
  int port = a.master_port >= 0 ? a.master_port : (env_port && *env_port) ? std::atoi(env_port) : 29500;
  if (port == 0) {
    if (a.nnodes > 1) throw ConfigError("launch: --master-port 0 (a free port) only works on one node");
    port = free_port();
  }
  if (port < 1 || port > 65535) throw ConfigError("launch: --master-port: expected 1-65535, got " + std::to_string(port));
  const int world = a.nproc * a.nnodes;

  struct sigaction sa{};
  sa.sa_handler = remember_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  std::vector<pid_t> pids(static_cast<size_t>(a.nproc), -1);
  std::vector<bool> running(static_cast<size_t>(a.nproc), false);
  for (int local = 0; local < a.nproc; ++local) {
    const int rank = a.node_rank * a.nproc + local;
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("launch: fork failed");
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // a killed launcher takes its ranks with it
      ::setenv("RANK", std::to_string(rank).c_str(), 1);
      ::setenv("WORLD_SIZE", std::to_string(world).c_str(), 1);
      ::setenv("LOCAL_RANK", std::to_string(local).c_str(), 1);
      ::setenv("LOCAL_WORLD_SIZE", std::to_string(a.nproc).c_str(), 1);
      ::setenv("GROUP_RANK", std::to_string(a.node_rank).c_str(), 1);
      ::setenv("MASTER_ADDR", addr.c_str(), 1);
      ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
      std::vector<char*> argv;
      std::string self = "lorascope";
      argv.push_back(self.data());
      std::vector<std::string> args = a.command;
      for (auto& s : args) argv.push_back(s.data());
      argv.push_back(nullptr);
      ::execv("/proc/self/exe", argv.data());
      std::fprintf(stderr, "lorascope launch: rank %d: exec failed\n", rank);
      std::_Exit(127);
    }
    pids[static_cast<size_t>(local)] = pid;
    running[static_cast<size_t>(local)] = true;
    std::fprintf(stderr, "lorascope launch: rank %d of %d: pid %d\n", rank, world, static_cast<int>(pid));
  }

  int code = 0, alive = a.nproc;
  bool stopping = false;
  std::chrono::steady_clock::time_point kill_at;
  auto stop_all = [&](int sig) {
    for (int i = 0; i < a.nproc; ++i) {
      if (running[static_cast<size_t>(i)]) ::kill(pids[static_cast<size_t>(i)], sig);
    }
  };
  // Marks a reaped rank as gone; its local index, or -1 for a pid that is not a running rank.
  auto reaped = [&](pid_t pid) {
    for (int i = 0; i < a.nproc; ++i) {
      if (pids[static_cast<size_t>(i)] != pid || !running[static_cast<size_t>(i)]) continue;
      running[static_cast<size_t>(i)] = false;
      --alive;
      return i;
    }
    return -1;
  };
  while (alive > 0) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid > 0) {
      int i = reaped(pid);
      const bool failed = i >= 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
      if (failed && !stopping) {
        // A rank killed by a signal takes its peers' next collective down, and they exit 1 a
        // moment later, sometimes reaped first: look briefly for a signalled rank to blame.
        const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(300);
        while (!WIFSIGNALED(status) && alive > 0 && std::chrono::steady_clock::now() < until) {
          int other_status = 0;
          const pid_t other = ::waitpid(-1, &other_status, WNOHANG);
          const int j = other > 0 ? reaped(other) : -1;
          if (j >= 0 && WIFSIGNALED(other_status)) pid = other, status = other_status, i = j;
          if (other <= 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        code = exit_code(status);
        std::fprintf(stderr, "lorascope launch: rank %d (pid %d) %s; stopping the other ranks\n",
                     a.node_rank * a.nproc + i, static_cast<int>(pid), describe(status).c_str());
        stopping = true;
        stop_all(SIGTERM);
        kill_at = std::chrono::steady_clock::now() +
                  std::chrono::milliseconds(static_cast<int64_t>(a.grace_s * 1000));
      }
      continue;
    }
    if (g_signal != 0 && !stopping) {
      std::fprintf(stderr, "lorascope launch: signal %d; stopping the ranks\n", static_cast<int>(g_signal));
      code = 128 + g_signal;
      stopping = true;
      stop_all(SIGTERM);
      kill_at = std::chrono::steady_clock::now() +
                std::chrono::milliseconds(static_cast<int64_t>(a.grace_s * 1000));
    }
    if (stopping && std::chrono::steady_clock::now() >= kill_at) {
      stop_all(SIGKILL);
      kill_at = std::chrono::steady_clock::time_point::max();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return code;
}

}  // namespace

Command add_launch_command(CLI::App& app) {
  auto args = std::make_shared<LaunchArgs>();
  auto* cmd = app.add_subcommand(
      "launch", "start the local ranks of a data-parallel job (torchrun-style environment: RANK, "
                "WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT); one failed rank stops all");
  cmd->add_option("--nproc", args->nproc, "processes on this machine")->required()->check(CLI::PositiveNumber);
  cmd->add_option("--nnodes", args->nnodes, "machines in the job (default 1)")->check(CLI::PositiveNumber);
  cmd->add_option("--node-rank", args->node_rank, "this machine's index, 0 on MASTER_ADDR's machine")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--master-addr", args->master_addr,
                  "address of rank 0's machine (default: $MASTER_ADDR or 127.0.0.1)");
  cmd->add_option("--master-port", args->master_port,
                  "rendezvous TCP port (default: $MASTER_PORT or 29500; 0 = a free port, one node)")
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--grace", args->grace_s, "seconds between SIGTERM and SIGKILL when stopping ranks")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("command", args->command, "the lorascope command each rank runs, after --")
      ->required();
  cmd->footer("Example: lorascope launch --nproc 2 -- --threads 1 finetune "
              "--config configs/lm/compare_spam.json --out runs/dp --set base=runs/base/brown");
  return [args] { return launch(*args); };
}

}  // namespace lorascope::cli
