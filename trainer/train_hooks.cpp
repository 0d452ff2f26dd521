#include "trainer/train_hooks.h"

#include <ATen/core/grad_mode.h>
#include <cmath>
#include <cstdio>
#include <optional>
#include <stdexcept>

#include "trainer/adapter_monitor.h"
#include "trainer/fault_injection.h"
#include "trainer/geometry_monitor.h"
#include "trainer/memory_budget.h"
#include "trainer/progress.h"

namespace lorascope {

using nlohmann::json;

namespace {

bool due(int64_t step, int64_t every, int64_t total) { return every > 0 && (step % every == 0 || step == total); }

class DivergencePolicy : public TrainHook {
 public:
  void after_step(TrainLoop& l) override {
    const auto& what = l.last.nonfinite;
    if (what.empty()) return;
    const std::string at = what + " at step " + std::to_string(l.state.step);
    if (l.s.cfg.nonfinite == "stop") return diverge(l, at);
    // Skipping is bounded: a run that skips more steps than it is to take (at least 10) diverged.
    if (++l.state.skipped_steps > std::max<int64_t>(10, l.s.total_steps)) {
      return diverge(l, at + " (" + std::to_string(l.state.skipped_steps) + " steps skipped)");
    }
    std::fprintf(stderr, "%s: %s; step skipped\n", l.s.cfg.name.c_str(), at.c_str());
  }

 private:
  static void diverge(TrainLoop& l, const std::string& message) {
    l.status = "diverged";
    l.summary["diverged_at_step"] = l.state.step;
    l.summary["message"] = message;
    l.stop = true;
  }
};

class FaultInjection : public TrainHook {
 public:
  void after_backward(TrainLoop& l) override {
    if (nan_injected_ || !fault_requested("nan_grad", l.state.step)) return;
    nan_injected_ = true;
    for (const auto& p : l.s.roles.parameters) {
      if (!p.tensor.grad().defined()) continue;
      at::NoGradGuard no_grad;
      p.tensor.mutable_grad().fill_(NAN);
      break;
    }
  }
  void after_step(TrainLoop& l) override {
    if (l.stepped && l.s.cfg.halt_at_step > 0 && l.state.step == l.s.cfg.halt_at_step) {
      l.status = "halted";  // as if killed here: no final checkpoint, no summary
      l.stop = true;
    }
  }

 private:
  bool nan_injected_ = false;
};

class Evaluator : public TrainHook {
 public:
  void after_step(TrainLoop& l) override {
    const int64_t every = l.s.cfg.eval_every;
    if (l.stepped && every > 0 && l.state.step % every == 0) l.record["eval"] = evaluate(l.s, l.s.eval_sample);
  }
};

// The spectra every monitor.every steps; with monitor.geometry_every, the geometry against the
// frozen base joins the same entries (and brings the spectra along on its own steps).
class AdapterMonitorHook : public TrainHook {
 public:
  void on_start(TrainLoop& l) override {
    const auto& c = l.s.cfg;
    if (c.geometry_every > 0 && !l.s.adapters().empty()) {
      GeometryOptions o;
      o.base_k = c.geometry_base_k;
      o.intruder_top_k = c.intruder_k;
      o.intruder_epsilon = c.intruder_epsilon;
      geometry_.emplace(o, c.base_svd_dtype == "float32" ? at::kFloat : at::kDouble);
    }
    if (l.state.step == 0 && !l.s.adapters().empty()) {
      // Step 0 also caches the bases' SVDs (their cost and memory show at the start).
      l.metrics.write({{"step", 0}, {"epoch", 0}, {"adapters", observe(l, geometry_.has_value())}, {"wall_s", 0.0}});
    }
  }
  void after_step(TrainLoop& l) override {
    if (!l.stepped || l.s.adapters().empty()) return;
    const bool geometry = geometry_ && due(l.state.step, l.s.cfg.geometry_every, l.s.total_steps);
    if (geometry || due(l.state.step, l.s.cfg.monitor_every, l.s.total_steps)) l.record["adapters"] = observe(l, geometry);
  }
  void on_end(TrainLoop& l) override {
    if (geometry_) l.summary["geometry_cache_bytes"] = geometry_->cached_bytes();
  }

 private:
  json observe(const TrainLoop& l, bool geometry) {
    json adapters = adapter_spectra(l.s.adapters());
    if (!geometry) return adapters;
    std::vector<GeometryInput> in;
    for (const auto& a : l.s.adapters()) {
      const RoledParameter* W = l.s.roles.find(a.name + ".weight");  // the adapted Linear's own weight
      if (!W) throw std::logic_error("geometry: no base weight " + a.name + ".weight in the role table");
      in.push_back({a.name, W->tensor, a.A, a.B, a.scaling});
    }
    merge_geometry(adapters, geometry_->observe(in));
    if (!cache_logged_) {  // the first geometry log filled the cache (step 0, or the first after a resume)
      cache_logged_ = true;
      std::fprintf(stderr, "%s: geometry monitor: base SVDs of %zu adapters cached, %s (monitor.base_svd_dtype=%s)\n",
                   l.s.cfg.name.c_str(), in.size(), format_bytes(geometry_->cached_bytes()).c_str(),
                   l.s.cfg.base_svd_dtype.c_str());
    }
    return adapters;
  }
  std::optional<GeometryMonitor> geometry_;
  bool cache_logged_ = false;
};

class MetricsLogger : public TrainHook {
 public:
  void after_step(TrainLoop& l) override {
    if (!l.stepped) return;
    window_tokens_ += l.last.tokens;
    if (!due(l.state.step, l.s.cfg.log_every, l.s.total_steps) && l.record.empty()) return;
    const auto now = std::chrono::steady_clock::now();
    const double dt = std::chrono::duration<double>(now - window_start_).count();
    json rec = {{"step", l.state.step}, {"epoch", l.state.epoch}, {"loss", l.last.loss},
                {"lr", l.s.optimizer->lr()}, {"grad_norm", l.last.grad_norm},
                {"tokens_per_s", dt > 0 ? window_tokens_ / dt : 0.0}, {"tokens", l.state.tokens},
                {"wall_s", l.seconds()}};
    if (l.state.skipped_steps > 0) rec["skipped_steps"] = l.state.skipped_steps;
    for (const auto& [k, v] : l.record.items()) rec[k] = v;
    l.metrics.write(rec);
    l.record = json();
    window_tokens_ = 0;
    window_start_ = now;
  }

 private:
  double window_tokens_ = 0;
  std::chrono::steady_clock::time_point window_start_ = std::chrono::steady_clock::now();
};

class Checkpointer : public TrainHook {
 public:
  Checkpointer(std::string run_dir, json meta) : run_dir_(std::move(run_dir)), meta_(std::move(meta)) {}
  void after_step(TrainLoop& l) override {
    const int64_t every = l.s.cfg.checkpoint_every;
    if (l.stepped && every > 0 && l.state.step % every == 0) save(l);
  }
  void on_end(TrainLoop& l) override {
    if (l.status == "completed") save(l);
  }

 private:
  void save(TrainLoop& l) {
    TrainState at = l.state;
    at.seconds = l.seconds();
    at.last_loss = l.last.loss;
    save_checkpoint(run_dir_, named_tensors(*l.s.model, l.s.trained), *l.s.optimizer, at, meta_,
                    l.s.cfg.keep_checkpoints);
  }
  std::string run_dir_;
  json meta_;
};

class ProgressLine : public TrainHook {
 public:
  void on_start(TrainLoop& l) override { progress_.emplace(l.s.cfg.name, l.s.total_steps, l.state.step); }
  void after_step(TrainLoop& l) override {
    if (l.stepped) progress_->update(l.state.step, l.last.loss, l.state.tokens / std::max(l.seconds(), 1e-9));
  }
  void on_end(TrainLoop&) override { progress_->finish(); }

 private:
  std::optional<Progress> progress_;
};

}  // namespace

std::unique_ptr<TrainHook> divergence_policy() { return std::make_unique<DivergencePolicy>(); }
std::unique_ptr<TrainHook> fault_injection() { return std::make_unique<FaultInjection>(); }
std::unique_ptr<TrainHook> evaluator() { return std::make_unique<Evaluator>(); }
std::unique_ptr<TrainHook> adapter_monitor() { return std::make_unique<AdapterMonitorHook>(); }
std::unique_ptr<TrainHook> metrics_logger() { return std::make_unique<MetricsLogger>(); }
std::unique_ptr<TrainHook> checkpointer(std::string run_dir, json meta) {
  return std::make_unique<Checkpointer>(std::move(run_dir), std::move(meta));
}
std::unique_ptr<TrainHook> progress_line() { return std::make_unique<ProgressLine>(); }

}  // namespace lorascope
