#include "trainer/tensorboard_sink.h"

#include <cmath>

namespace lorascope {

using nlohmann::json;

namespace {

bool numeric_list(const json& v) {
  if (!v.is_array() || v.empty()) return false;
  for (const auto& x : v) {
    if (!x.is_number() && !x.is_null()) return false;
  }
  return true;
}

std::string index_tag(size_t i, size_t count) {
  std::string s = std::to_string(i + 1);
  const size_t width = std::to_string(count).size();
  return std::string(width - std::min(width, s.size()), '0') + s;
}

// value at tag: a scalar, a histogram with per-entry scalars, or a recursion into its parts.
void flatten(const std::string& tag, const json& value, std::vector<SummaryValue>& out) {
  if (value.is_number()) {
    out.push_back({tag, static_cast<float>(value.get<double>()), std::nullopt});
  } else if (numeric_list(value)) {
    std::vector<double> finite;
    for (const auto& x : value) {
      if (x.is_number() && std::isfinite(x.get<double>())) finite.push_back(x.get<double>());
    }
    if (!finite.empty()) out.push_back({tag, std::nullopt, make_histogram(finite)});
    for (size_t i = 0; i < value.size(); ++i) {
      if (value[i].is_number()) flatten(tag + "/" + index_tag(i, value.size()), value[i], out);
    }
  } else if (value.is_array()) {
    for (size_t i = 0; i < value.size(); ++i) flatten(tag + "/" + index_tag(i, value.size()), value[i], out);
  } else if (value.is_object()) {
    for (const auto& [key, v] : value.items()) flatten(tag + "/" + key, v, out);
  }
}

}  // namespace

std::vector<SummaryValue> tensorboard_values(const json& record) {
  std::vector<SummaryValue> out;
  if (!record.is_object()) return out;
  for (const auto& [key, value] : record.items()) {
    if (key == "step" || key == "wall_s") continue;
    if (key == "adapters" && value.is_object()) {
      for (const auto& [name, stats] : value.items()) {
        if (!stats.is_object()) continue;
        for (const auto& [field, v] : stats.items()) flatten(field + "/" + name, v, out);
      }
    } else if (key == "eval" && value.is_object()) {
      flatten("eval", value, out);
    } else if (value.is_number()) {
      flatten("train/" + key, value, out);
    } else {
      flatten(key, value, out);
    }
  }
  return out;
}

TensorBoardSink::TensorBoardSink(const std::string& dir, double start) : writer_(dir), start_(start) {}

void TensorBoardSink::write(const json& record) {
  if (!record.is_object() || !record.contains("step") || !record["step"].is_number_integer()) return;
  const auto wall = record.find("wall_s");
  const double wall_time = wall != record.end() && wall->is_number() ? start_ + wall->get<double>() : unix_seconds();
  writer_.write(record["step"].get<int64_t>(), tensorboard_values(record), wall_time);
}

}  // namespace lorascope
