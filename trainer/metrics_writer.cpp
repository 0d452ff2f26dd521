#include "trainer/metrics_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "trainer/file_integrity.h"
#include "util/json_file.h"

namespace lorascope {

namespace {
void write_all(int fd, const std::string& data, const std::string& path) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error(path + ": write failed: " + std::strerror(errno));
    }
    done += static_cast<size_t>(n);
  }
}
}  // namespace

JsonlWriter::JsonlWriter(const std::string& path, bool append) : path_(path) {
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC) | O_CLOEXEC, 0644);
  if (fd_ < 0) throw std::runtime_error(path + ": cannot create: " + std::strerror(errno));
}

JsonlWriter::~JsonlWriter() {
  if (fd_ >= 0) {
    ::fsync(fd_);
    ::close(fd_);
  }
}

void JsonlWriter::write(const nlohmann::json& record) {
  // NaN and Inf have no JSON spelling; nlohmann writes them as null.
  write_all(fd_, record.dump() + "\n", path_);
}

void truncate_jsonl_after(const std::string& path, int64_t max_step) {
  if (!std::filesystem::exists(path)) return;
  std::string kept;
  for (const auto& line : read_json_lines(path)) {
    const auto& rec = line.value;
    if (!rec.is_object() || !rec.contains("step") || !rec["step"].is_number_integer()) continue;
    if (rec["step"].get<int64_t>() <= max_step) kept += line.text + "\n";
  }
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << kept;
    out.flush();
    if (!out) throw std::runtime_error(tmp + ": write failed");
  }
  fsync_path(tmp);
  std::filesystem::rename(tmp, path);
}

void write_json_atomic(const std::string& path, const nlohmann::json& value) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error(tmp + ": cannot create: " + std::strerror(errno));
  try {
    write_all(fd, value.dump(2) + "\n", tmp);
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::fsync(fd);
  ::close(fd);
  std::filesystem::rename(tmp, path);
}

}  // namespace lorascope
