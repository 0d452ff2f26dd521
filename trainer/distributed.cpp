// c10d is used here and nowhere else. LibTorch 1.13 derives ProcessGroupGloo/NCCL from
// c10d::ProcessGroup, 2.x from c10d::Backend (the ProcessGroup there is a dispatching wrapper);
// both keep the constructors (store, rank, size, options) and the collectives used below
// (allreduce, allgather, broadcast, barrier returning intrusive_ptr<Work>).
#include "trainer/distributed.h"

// ProcessGroupGloo.hpp is empty unless the build says Gloo is in; LibTorch's CMake config does
// not pass the definition on (Debian's libtorch_cpu.so and PyTorch's wheels both contain Gloo).
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef LORASCOPE_WITH_NCCL  // CMake option; only with a CUDA LibTorch built with c10d NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#include <torch/version.h>

#include <cstdlib>
#include <string>

#include "trainer/config.h"

namespace lorascope {

#if TORCH_VERSION_MAJOR >= 2
using C10dGroup = c10d::Backend;
#else
using C10dGroup = c10d::ProcessGroup;
#endif

namespace {

int env_int(const char* name, int min_value, bool* present) {
  const char* v = std::getenv(name);
  *present = v != nullptr && *v != '\0';
  if (!*present) return 0;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  if (*end != '\0' || n < min_value || n > 1 << 30) {
    throw ConfigError(std::string("environment variable ") + name + ": expected an integer >= " +
                      std::to_string(min_value) + ", got \"" + v + "\"");
  }
  return static_cast<int>(n);
}

// c10::Error::what() carries a C++ backtrace; the message is enough.
std::string reason(const std::exception& e) {
  if (auto* c = dynamic_cast<const c10::Error*>(&e)) return c->what_without_backtrace();
  return e.what();
}

bool is_loopback(const std::string& addr) {
  return addr == "localhost" || addr.rfind("127.", 0) == 0 || addr == "::1";
}

}  // namespace

bool rendezvous_from_env(RendezvousInfo* out) {
  bool has_world = false, has_rank = false, has_local = false, has_port = false;
  const int world = env_int("WORLD_SIZE", 1, &has_world);
  if (!has_world) return false;
  RendezvousInfo r;
  r.world_size = world;
  r.rank = env_int("RANK", 0, &has_rank);
  if (!has_rank) throw ConfigError("environment variable RANK: expected the rank of this process (WORLD_SIZE is set)");
  if (r.rank >= world) {
    throw ConfigError("environment variable RANK: expected < WORLD_SIZE = " + std::to_string(world) +
                      ", got " + std::to_string(r.rank));
  }
  r.local_rank = env_int("LOCAL_RANK", 0, &has_local);
  const int port = env_int("MASTER_PORT", 1, &has_port);
  if (has_port) {
    if (port > 65535) throw ConfigError("environment variable MASTER_PORT: expected a port <= 65535, got " + std::to_string(port));
    r.master_port = port;
  }
  if (const char* addr = std::getenv("MASTER_ADDR"); addr && *addr) r.master_addr = addr;
  *out = r;
  return true;
}

void PendingWork::wait() {
  if (wait_) {
    auto w = std::move(wait_);
    wait_ = nullptr;
    w();
  }
}

struct Communicator::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<C10dGroup> group;
};

Communicator::Communicator(const RendezvousInfo& where, const DistributedOptions& options)
    : where_(where), timeout_(options.timeout), impl_(std::make_unique<Impl>()) {
  backend_ = options.backend == "auto" ? (options.cuda ? "nccl" : "gloo") : options.backend;
#ifndef LORASCOPE_WITH_NCCL
  if (backend_ == "nccl") {
    if (options.backend == "auto") {
      backend_ = "gloo";  // CUDA tensors over Gloo: correct, slower
    } else {
      throw ConfigError("--dist-backend nccl: this build has no NCCL (configure with "
                        "-DLORASCOPE_WITH_NCCL=ON against a CUDA LibTorch)");
    }
  }
#endif
  if (backend_ != "gloo" && backend_ != "nccl") {
    throw ConfigError("--dist-backend: expected gloo, nccl or auto, got \"" + backend_ + "\"");
  }
  const std::string at = where.master_addr + ":" + std::to_string(where.master_port);
  try {
    c10d::TCPStoreOptions so;
    so.port = static_cast<uint16_t>(where.master_port);
    so.isServer = where.rank == 0;
    so.numWorkers = static_cast<size_t>(where.world_size);
    so.waitWorkers = true;
    so.timeout = options.timeout;
    impl_->store = c10::make_intrusive<c10d::TCPStore>(where.master_addr, so);
  } catch (const std::exception& e) {
    throw DistributedError("rank " + std::to_string(where.rank) + " of " +
                           std::to_string(where.world_size) + ": rendezvous at " + at +
                           " (MASTER_ADDR:MASTER_PORT) failed within " +
                           std::to_string(options.timeout.count() / 1000) + " s: " + reason(e));
  }
  try {
    if (backend_ == "gloo") {
      auto opts = c10d::ProcessGroupGloo::Options::create(options.timeout);
      if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname) {
        opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
      } else if (is_loopback(where.master_addr)) {
        opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
      } else {
        opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      }
      opts->threads = 2;
      impl_->group = c10::make_intrusive<c10d::ProcessGroupGloo>(impl_->store, where.rank,
                                                                 where.world_size, opts);
    } else {
#ifdef LORASCOPE_WITH_NCCL
      auto opts = c10d::ProcessGroupNCCL::Options::create();
      opts->timeout = options.timeout;
      impl_->group = c10::make_intrusive<c10d::ProcessGroupNCCL>(impl_->store, where.rank,
                                                                 where.world_size, opts);
#endif
    }
  } catch (const std::exception& e) {
    throw DistributedError("rank " + std::to_string(where.rank) + ": creating the " + backend_ +
                           " process group (rendezvous " + at + ") failed: " + reason(e));
  }
}

Communicator::~Communicator() = default;

namespace {
// Runs a collective's wait(), turning c10d/Gloo failures into one readable DistributedError.
void wait_or_throw(const c10::intrusive_ptr<c10d::Work>& work, const std::string& what, int rank,
                   std::chrono::milliseconds timeout) {
  try {
    work->wait(timeout);
  } catch (const std::exception& e) {
    throw DistributedError("rank " + std::to_string(rank) + ": " + what +
                           " failed (a peer rank died, or did not answer within " +
                           std::to_string(timeout.count() / 1000) + " s): " + reason(e));
  }
}

// Starts a collective, turning a failure to start it into one readable DistributedError.
template <class Start>
c10::intrusive_ptr<c10d::Work> start_or_throw(Start&& start, const std::string& what, int rank) {
  try {
    return start();
  } catch (const std::exception& e) {
    throw DistributedError("rank " + std::to_string(rank) + ": " + what + " failed: " + reason(e));
  }
}
}  // namespace

PendingWork Communicator::all_reduce_async(at::Tensor flat) {
  TORCH_CHECK(flat.is_contiguous(), "all_reduce: expected a contiguous tensor");
  std::vector<at::Tensor> tensors = {flat};
  const int r = rank();
  auto work = start_or_throw([&] { return impl_->group->allreduce(tensors); }, "all_reduce", r);
  const auto t = timeout_;
  // The tensor list must outlive the work; the lambda owns it.
  return PendingWork([work, tensors, r, t] { wait_or_throw(work, "all_reduce", r, t); });
}

std::vector<at::Tensor> Communicator::all_gather(const at::Tensor& mine) {
  std::vector<at::Tensor> input = {mine.contiguous()};
  std::vector<std::vector<at::Tensor>> output(1);
  for (int i = 0; i < world_size(); ++i) output[0].push_back(at::empty_like(input[0]));
  auto work = start_or_throw([&] { return impl_->group->allgather(output, input); }, "all_gather", rank());
  wait_or_throw(work, "all_gather", rank(), timeout_);
  return output[0];
}

void Communicator::broadcast(at::Tensor tensor, int root) {
  TORCH_CHECK(tensor.is_contiguous(), "broadcast: expected a contiguous tensor");
  std::vector<at::Tensor> tensors = {tensor};
  c10d::BroadcastOptions opts;
  opts.rootRank = root;
  auto work = start_or_throw([&] { return impl_->group->broadcast(tensors, opts); }, "broadcast", rank());
  wait_or_throw(work, "broadcast", rank(), timeout_);
}

void Communicator::barrier() {
  auto work = start_or_throw([&] { return impl_->group->barrier(); }, "barrier", rank());
  wait_or_throw(work, "barrier", rank(), timeout_);
}

}  // namespace lorascope
