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
  // Truncates, or appends (resumed runs); throws naming the path.
  explicit JsonlWriter(const std::string& path, bool append = false);
  ~JsonlWriter() override;
  JsonlWriter(const JsonlWriter&) = delete;
  JsonlWriter& operator=(const JsonlWriter&) = delete;
  void write(const nlohmann::json& record) override;

 private:
  std::string path_;
  int fd_ = -1;
};

// Keeps the lines of a JSON-lines file whose "step" is <= max_step (a resumed run rewinds its
// log to the checkpoint); a torn last line is dropped, any other line that is not JSON is an error
// naming the file and line (util/json_file.h read_json_lines). Atomic like write_json_atomic.
void truncate_jsonl_after(const std::string& path, int64_t max_step);

// Writes PATH.tmp, fsyncs and renames it over PATH: readers see the old or the new file.
void write_json_atomic(const std::string& path, const nlohmann::json& value);

}  // namespace lorascope
