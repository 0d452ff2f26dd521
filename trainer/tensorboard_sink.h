// A metrics sink that writes TensorBoard event files (trainer/tensorboard_writer.h) from the
// records the trainers write to metrics.jsonl (README "Outputs"), so TensorBoard shows a run
// live, or `lorascope tensorboard RUN` converts a finished one. Tags, by record field:
//   numbers at the top level       "train/<field>"       loss, lr, grad_norm, tokens_per_s, epoch, ...
//                                                         (not step, which is the event's step,
//                                                         nor wall_s, which sets its wall time)
//   eval: {field: number}          "eval/<field>"        loss, accuracy, perplexity
//   adapters: {NAME: {field: ..}}  "<field>/<NAME>"      erank, stable_rank, fro, ... grouped by
//                                                         metric, so one TensorBoard section
//                                                         compares the adapters
//   a list of numbers              a histogram at the tag, and one scalar per entry at
//                                  "<tag>/<i>" (i = 1.., zero-padded to the list's width): the
//                                  histogram shows the spread of an adapter's r singular values
//                                  over time, the scalars each sigma_i's own curve
//   other objects and lists        their fields joined with "/" ("factors/1/sv" of MF runs)
// null, strings and booleans are left out. wall_time = start + wall_s when the record has it.
#pragma once

#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

#include "trainer/metrics_writer.h"
#include "trainer/tensorboard_writer.h"

namespace lorascope {

// The summaries of one record (exposed for tests).
std::vector<SummaryValue> tensorboard_values(const nlohmann::json& record);

class TensorBoardSink : public MetricsSink {
 public:
  // start: wall time (Unix seconds) that a record's wall_s counts from.
  TensorBoardSink(const std::string& dir, double start);
  // Records without an integer "step" are skipped.
  void write(const nlohmann::json& record) override;
  const std::string& path() const { return writer_.path(); }

 private:
  TensorBoardWriter writer_;
  double start_;
};

}  // namespace lorascope
