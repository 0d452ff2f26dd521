#include "trainer/grad_reducer.h"

#include <ATen/core/grad_mode.h>  // at::NoGradGuard (not in <ATen/ATen.h> from LibTorch 2 on)

#include <chrono>
#include <map>
#include <string>

namespace lorascope {

GradReducer::GradReducer(std::vector<at::Tensor> params, Communicator& comm, int64_t bucket_bytes,
                         bool overlap)
    : params_(std::move(params)), comm_(comm), overlap_(overlap), slots_(params_.size()) {
  // Reverse order: backward reaches the last parameters first, so the first bucket fills first.
  std::map<std::string, size_t> open;  // dtype+device -> bucket being filled
  std::vector<int64_t> sizes;
  std::vector<at::TensorOptions> options;
  for (size_t n = params_.size(); n-- > 0;) {
    const auto& p = params_[n];
    const std::string key = c10::str(p.scalar_type(), p.device());
    auto it = open.find(key);
    const auto elem = static_cast<int64_t>(p.element_size());
    if (it == open.end() || (sizes[it->second] > 0 && (sizes[it->second] + p.numel()) * elem > bucket_bytes)) {
      sizes.push_back(0);
      options.push_back(p.options().requires_grad(false));
      it = open.insert_or_assign(key, sizes.size() - 1).first;
    }
    slots_[n] = {it->second, sizes[it->second], p.numel()};
    sizes[it->second] += p.numel();
  }
  buckets_.resize(sizes.size());
  for (size_t b = 0; b < sizes.size(); ++b) buckets_[b].flat = at::zeros({sizes[b]}, options[b]);
  if (overlap_) {
    for (size_t i = 0; i < params_.size(); ++i) {
      hooks_.push_back(params_[i].register_hook([this, i](const at::Tensor& grad) { on_grad(i, grad); }));
    }
  }
}

GradReducer::~GradReducer() {
  for (size_t i = 0; i < hooks_.size(); ++i) params_[i].remove_hook(hooks_[i]);
}

at::Tensor GradReducer::view(size_t i) {
  const auto& s = slots_[i];
  return buckets_[s.bucket].flat.narrow(0, s.offset, s.numel).view(params_[i].sizes());
}

void GradReducer::arm() {
  armed_ = true;
  for (auto& s : slots_) s.ready = false;
  for (auto& b : buckets_) b.pending = 0;
  for (const auto& s : slots_) ++buckets_[s.bucket].pending;
  next_launch_ = 0;
}

// Runs inside backward, before the gradient is accumulated into .grad: the final .grad of this
// backward is the old .grad plus `grad`.
void GradReducer::on_grad(size_t i, const at::Tensor& grad) {
  if (!armed_ || slots_[i].ready) return;
  at::NoGradGuard no_grad;
  auto dst = view(i);
  const auto& old = params_[i].grad();
  if (old.defined()) {
    at::add_out(dst, old, grad);
  } else {
    dst.copy_(grad);
  }
  slots_[i].ready = true;
  --buckets_[slots_[i].bucket].pending;
  launch_ready();
}

void GradReducer::launch_ready() {
  while (next_launch_ < buckets_.size() && buckets_[next_launch_].pending == 0) {
    auto& b = buckets_[next_launch_++];
    b.work = comm_.all_reduce_async(b.flat);
  }
}

double GradReducer::finish() {
  const auto start = std::chrono::steady_clock::now();
  if (!armed_) arm();
  at::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    if (slots_[i].ready) continue;
    const auto& g = params_[i].grad();
    if (g.defined()) {
      view(i).copy_(g);
    } else {
      view(i).zero_();
    }
    slots_[i].ready = true;
    --buckets_[slots_[i].bucket].pending;
  }
  launch_ready();
  for (auto& b : buckets_) b.work.wait();
  for (size_t i = 0; i < params_.size(); ++i) {
    auto& p = params_[i];
    if (p.grad().defined()) {
      p.mutable_grad().copy_(view(i));
    } else {
      p.mutable_grad() = view(i).clone();
    }
  }
  armed_ = false;
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace lorascope
