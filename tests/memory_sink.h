// A metrics sink that keeps the records in memory: the training loops run without files.
#pragma once

#include <nlohmann/json.hpp>

#include <vector>

#include "trainer/metrics_writer.h"

namespace lorascope {

struct MemorySink : MetricsSink {
  std::vector<nlohmann::json> records;
  void write(const nlohmann::json& r) override { records.push_back(r); }
};

}  // namespace lorascope
