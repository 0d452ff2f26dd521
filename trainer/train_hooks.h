// The training loop's hooks (torchtune's callbacks): the loop (trainer/train_recipe.cpp) only
// steps; everything around a step is a hook, called in list order:
//
//   divergence policy   a non-finite step stops the run (train.nonfinite=stop) or is skipped and
//                       counted (skip; a run that skips more steps than it can take stops)
//   fault injection     tests only: a NaN gradient (LORASCOPE_FAULT=nan_grad:S), a halt as if
//                       killed after train.halt_at_step
//   evaluator           the fixed validation sample every train.eval_every steps
//   adapter monitor     every adapter's spectrum every monitor.every steps; its geometry against
//                       the frozen base every monitor.geometry_every steps
//   metrics             one record per train.log_every steps (or when the above added to it)
//   checkpointer        every train.checkpoint_every steps and at the end
//   progress            the terminal's progress line
//
// A hook reads and writes the TrainLoop; none knows where the metrics go (a MetricsSink).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "trainer/metrics_writer.h"
#include "trainer/train_session.h"

namespace lorascope {

struct TrainLoop {
  TrainLoop(Session& session, const TrainState& from, MetricsSink& sink) : s(session), state(from), metrics(sink) {}
  Session& s;
  TrainState state;
  MetricsSink& metrics;
  StepResult last;              // the step just attempted
  bool stepped = false;         // it updated the weights
  bool stop = false;            // a hook ends the run
  std::string status = "completed";  // completed | diverged | halted
  nlohmann::json record;        // this step's metrics line, composed by the hooks
  nlohmann::json summary = nlohmann::json::object();  // what hooks add to summary.json
  double seconds_before = 0;    // wall time before a resume
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  double seconds() const {
    return seconds_before + std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
};

class TrainHook {
 public:
  virtual ~TrainHook() = default;
  virtual void on_start(TrainLoop&) {}
  virtual void after_backward(TrainLoop&) {}
  virtual void after_step(TrainLoop&) {}  // after every attempt (stepped or not)
  virtual void on_end(TrainLoop&) {}
};
using Hooks = std::vector<std::unique_ptr<TrainHook>>;

std::unique_ptr<TrainHook> divergence_policy();
std::unique_ptr<TrainHook> fault_injection();
std::unique_ptr<TrainHook> evaluator();
std::unique_ptr<TrainHook> adapter_monitor();
std::unique_ptr<TrainHook> metrics_logger();
// meta: stored in every checkpoint's state.json (config, base fingerprint).
std::unique_ptr<TrainHook> checkpointer(std::string run_dir, nlohmann::json meta);
std::unique_ptr<TrainHook> progress_line();

}  // namespace lorascope
