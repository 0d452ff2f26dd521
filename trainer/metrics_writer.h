// Metric sinks. The training loops hand JSON records to a MetricsSink and do not know where they
// go. The JSON-lines file writes each record with one write(2) of the whole line and flushes, so
// a killed run leaves only complete lines behind (plus at most one torn last line, which readers
// skip).
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace lorascope {

class MetricsSink {
 public:
  virtual ~MetricsSink() = default;
  virtual void write(const nlohmann::json& record) = 0;
};

class JsonlWriter : public MetricsSink {
 public:
  explicit JsonlWriter(const std::string& path);  // truncates; throws naming the path
  ~JsonlWriter() override;
  JsonlWriter(const JsonlWriter&) = delete;
  JsonlWriter& operator=(const JsonlWriter&) = delete;
  void write(const nlohmann::json& record) override;

 private:
  std::string path_;
  int fd_ = -1;
};

// Writes PATH.tmp, fsyncs and renames it over PATH: readers see the old or the new file.
void write_json_atomic(const std::string& path, const nlohmann::json& value);

}  // namespace lorascope
