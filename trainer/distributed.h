// The process group of a data-parallel run, on LibTorch's own c10d (Gloo on CPU, NCCL on CUDA
// when this build has it). Only trainer/distributed.cpp includes c10d, whose C++ API differs
// between LibTorch 1.13 (ProcessGroup) and 2.x (Backend); the rest of lorascope sees this class.
//
// Rendezvous as torch.distributed's env:// method: RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT
// (and LOCAL_RANK for the device) name a TCPStore served by rank 0, so `lorascope launch`,
// torchrun and cluster schedulers all work, on one machine or several. Every collective is
// bounded by the timeout: a dead or stuck peer makes it throw DistributedError instead of
// hanging.
#pragma once

#include <ATen/ATen.h>

#include <chrono>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace lorascope {

// A collective failed (peer gone, timeout) or the rendezvous did not complete. The process
// group may hold threads blocked on the dead peer, so the CLI exits without unwinding them.
class DistributedError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct DistributedOptions {
  std::string backend = "auto";  // gloo | nccl | auto (nccl for a CUDA device when built with it)
  std::chrono::milliseconds timeout{std::chrono::minutes(5)};  // rendezvous and each collective
  bool cuda = false;             // tensors live on the GPU (auto picks nccl)
};

struct RendezvousInfo {
  int rank = 0, world_size = 1, local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
};

// RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT, or nothing when WORLD_SIZE is unset
// (a plain single-process run). Malformed values throw ConfigError naming the variable.
bool rendezvous_from_env(RendezvousInfo* out);

// An all-reduce in flight: wait() blocks until it is done and throws DistributedError on failure.
class PendingWork {
 public:
  PendingWork() = default;
  explicit PendingWork(std::function<void()> wait) : wait_(std::move(wait)) {}
  void wait();

 private:
  std::function<void()> wait_;
};

class Communicator {
 public:
  Communicator(const RendezvousInfo& where, const DistributedOptions& options);
  ~Communicator();
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  int rank() const { return where_.rank; }
  int world_size() const { return where_.world_size; }
  int local_rank() const { return where_.local_rank; }
  const std::string& backend() const { return backend_; }

  // Sum over ranks, in place. One contiguous tensor per call (callers flatten into buckets).
  PendingWork all_reduce_async(at::Tensor flat);
  void all_reduce(at::Tensor flat) { all_reduce_async(std::move(flat)).wait(); }
  // Every rank's `mine` (same shape and dtype on every rank), in rank order.
  std::vector<at::Tensor> all_gather(const at::Tensor& mine);
  void broadcast(at::Tensor tensor, int root);
  void barrier();

 private:
  struct Impl;
  RendezvousInfo where_;
  std::string backend_;
  std::chrono::milliseconds timeout_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lorascope
