#include "util/json_file.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace lorascope {

using nlohmann::json;

namespace {

// nlohmann's what() starts with "[json.exception.parse_error.101] "; the rest (with "at line L,
// column C") is what a user needs.
std::string parser_message(const json::exception& e) {
  const std::string what = e.what();
  const auto end = what.find("] ");
  return what.rfind("[json.exception.", 0) == 0 && end != std::string::npos ? what.substr(end + 2) : what;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw JsonFileError(path + ": cannot open file");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw JsonFileError(path + ": cannot read file");
  return text.str();
}

template <typename Json>
Json parse(const std::string& text, const std::string& where) {
  try {
    return Json::parse(text);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number like 1e999
    throw JsonFileError(where + ": not valid JSON: " + parser_message(e));
  }
}

std::string range_text(const char* what, double min, double max, bool integer) {
  const auto num = [&](double v) {
    std::ostringstream s;
    if (integer) {
      s << static_cast<long long>(v);
    } else {
      s << v;
    }
    return s.str();
  };
  const double lo = integer ? static_cast<double>(std::numeric_limits<int64_t>::min()) : -INFINITY;
  const double hi = integer ? static_cast<double>(std::numeric_limits<int64_t>::max()) : INFINITY;
  std::string out = std::string("expected ") + what;
  if (min > lo && max < hi) return out + " in [" + num(min) + ", " + num(max) + "]";
  if (min > lo) return out + " >= " + num(min);
  if (max < hi) return out + " <= " + num(max);
  return out;
}

}  // namespace

json read_json_file(const std::string& path) { return parse<json>(read_text(path), path); }

nlohmann::ordered_json read_ordered_json_file(const std::string& path) {
  return parse<nlohmann::ordered_json>(read_text(path), path);
}

json parse_json_text(const std::string& text, const std::string& where) { return parse<json>(text, where); }

std::vector<JsonLine> read_json_lines(const std::string& path, bool missing_ok) {
  if (missing_ok && !std::filesystem::exists(path)) return {};
  std::istringstream text(read_text(path));
  std::vector<std::string> lines;
  for (std::string line; std::getline(text, line);) lines.push_back(std::move(line));
  std::vector<JsonLine> out;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].find_first_not_of(" \t\r") == std::string::npos) continue;
    const auto number = static_cast<int64_t>(i + 1);
    try {
      auto value = parse<json>(lines[i], path + ":" + std::to_string(number));
      out.push_back({number, std::move(lines[i]), std::move(value)});
    } catch (const JsonFileError&) {
      if (i + 1 == lines.size()) break;  // a torn last line of a killed run
      throw;
    }
  }
  return out;
}

JsonFields::JsonFields(const json& j, std::string where) : j_(j), where_(std::move(where)) {
  if (!j_.is_object()) throw JsonFileError(where_ + ": expected a JSON object, got " + j_.dump().substr(0, 80));
}

bool JsonFields::has(const std::string& key) const { return j_.contains(key) && !j_.at(key).is_null(); }

void JsonFields::fail(const std::string& key, const std::string& what) const {
  throw JsonFileError(where_ + ": " + key + ": " + what + ", got " + (j_.contains(key) ? j_.at(key).dump() : "nothing"));
}

int64_t JsonFields::integer(const std::string& key, int64_t min, int64_t max) const {
  const std::string what = range_text("an integer", static_cast<double>(min), static_cast<double>(max), true);
  if (!j_.contains(key)) fail(key, what);
  const json& v = j_.at(key);
  // 3.0 is an integer; 1e30 or 2.5 is not.
  const bool integral = v.is_number_integer() ||
                        (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>() &&
                         std::fabs(v.get<double>()) < 9.0e18);
  if (!integral) fail(key, what);
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    fail(key, what);
  }
  const int64_t x = v.is_number_float() ? static_cast<int64_t>(v.get<double>()) : v.get<int64_t>();
  if (x < min || x > max) fail(key, what);
  return x;
}

int64_t JsonFields::integer(const std::string& key, int64_t fallback, int64_t min, int64_t max) const {
  return has(key) ? integer(key, min, max) : fallback;
}

double JsonFields::number(const std::string& key, double min, double max) const {
  const std::string what = range_text("a number", min, max, false);
  if (!j_.contains(key) || !j_.at(key).is_number()) fail(key, what);
  const double x = j_.at(key).get<double>();
  if (!std::isfinite(x) || x < min || x > max) fail(key, what);
  return x;
}

double JsonFields::number(const std::string& key, double fallback, double min, double max) const {
  return has(key) ? number(key, min, max) : fallback;
}

double JsonFields::positive(const std::string& key) const {
  if (!j_.contains(key) || !j_.at(key).is_number()) fail(key, "expected a positive number");
  const double x = j_.at(key).get<double>();
  if (!std::isfinite(x) || !(x > 0)) fail(key, "expected a positive number");
  return x;
}

std::string JsonFields::string(const std::string& key) const {
  if (!j_.contains(key) || !j_.at(key).is_string()) fail(key, "expected a string");
  return j_.at(key).get<std::string>();
}

std::string JsonFields::string(const std::string& key, const std::string& fallback) const {
  return has(key) ? string(key) : fallback;
}

bool JsonFields::boolean(const std::string& key) const {
  if (!j_.contains(key) || !j_.at(key).is_boolean()) fail(key, "expected true or false");
  return j_.at(key).get<bool>();
}

bool JsonFields::boolean(const std::string& key, bool fallback) const {
  return has(key) ? boolean(key) : fallback;
}

const json& JsonFields::object(const std::string& key) const {
  if (!j_.contains(key) || !j_.at(key).is_object()) fail(key, "expected an object");
  return j_.at(key);
}

}  // namespace lorascope
