// Data-parallel gradient all-reduce over a Communicator, as torch DDP's Reducer does it in
// spirit: the trainable parameters are laid out in flat buckets (one dtype per bucket, about
// bucket_bytes each, in reverse registration order because backward produces the last layers'
// gradients first), and each bucket is summed over the ranks with one collective.
//
// Overlap: with overlap on, a tensor hook on every parameter copies its final gradient (what
// .grad will hold after this backward) into its bucket as backward produces it, and a full
// bucket's all-reduce starts at once, on the backend's threads, while backward goes on. Buckets
// start strictly in bucket order, so every rank issues the same collectives in the same order
// whatever order its hooks fire in. Only the backward of a step's last micro-batch is armed
// (earlier micro-batches accumulate locally, like DDP's no_sync). With overlap off, everything
// is copied and reduced after backward.
//
// The sum (not the mean) is taken: the recipe divides each rank's loss by the global batch's
// denominator, so the summed gradient is the gradient of the global mean loss.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

#include "trainer/distributed.h"

namespace lorascope {

class GradReducer {
 public:
  GradReducer(std::vector<at::Tensor> params, Communicator& comm, int64_t bucket_bytes, bool overlap);
  ~GradReducer();  // removes the hooks
  GradReducer(const GradReducer&) = delete;
  GradReducer& operator=(const GradReducer&) = delete;

  // Before the backward of a step's last micro-batch (or before skipping it: a rank with no
  // rows in that micro-batch runs no backward).
  void arm();
  // After that backward: reduces what is left, waits for every bucket and writes the sums into
  // .grad (every parameter gets one, zeros where this rank produced none). Returns the seconds
  // spent here, i.e. the communication that backward did not hide.
  double finish();

  size_t bucket_count() const { return buckets_.size(); }

 private:
  struct Slot {
    size_t bucket;
    int64_t offset, numel;
    bool ready = false;
  };
  struct Bucket {
    at::Tensor flat;
    int64_t pending = 0;  // parameters not yet copied in
    bool launched = false;
    PendingWork work;
  };
  at::Tensor view(size_t i);  // parameter i's place in its bucket, shaped like it
  void on_grad(size_t i, const at::Tensor& grad);
  void launch_ready();

  std::vector<at::Tensor> params_;
  Communicator& comm_;
  bool overlap_;
  bool armed_ = false;
  std::vector<unsigned> hooks_;
  std::vector<Slot> slots_;
  std::vector<Bucket> buckets_;
  size_t next_launch_ = 0;
};

}  // namespace lorascope
