// Reading JSON documents the one way every reader in lorascope does: the file is opened and
// parsed here, and every error names the file (and the parser's line and column), so a reader
// never repeats the read-and-catch block. Typed getters check a key's type and range and name
// the key: "config.json: hidden_size: expected an integer >= 1, got -3".
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace lorascope {

// Everything below throws this (a runtime_error: commands turn it into exit code 2).
class JsonFileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// "PATH: cannot open file" | "PATH: not valid JSON: parse error at line L, column C: ...".
// A number outside double's range (1e999) is "not valid JSON" too, not an uncaught exception.
nlohmann::json read_json_file(const std::string& path);
// The same keeping the file's key order (PEFT's rank_pattern: the first matching key wins).
nlohmann::ordered_json read_ordered_json_file(const std::string& path);
// Text already in memory (one line of a JSON-lines file, a safetensors header); where names it
// in messages ("data.jsonl:12").
nlohmann::json parse_json_text(const std::string& text, const std::string& where);

// One line of a JSON-lines file: its number (from 1), its text (without the newline), its value.
struct JsonLine {
  int64_t number = 0;
  std::string text;
  nlohmann::json value;
};
// Every non-empty line of a JSON-lines file (metrics.jsonl), parsed. A line that is not JSON
// throws "PATH:LINE: not valid JSON: ...", except the file's last line, which is left out: the
// torn write of a killed run. A missing file has no lines when missing_ok, else it is
// "PATH: cannot open file".
std::vector<JsonLine> read_json_lines(const std::string& path, bool missing_ok = false);

// Typed access to one JSON object read from `where`. Getters without a default require the key;
// those with one return it when the key is absent or null. Ranges are inclusive.
class JsonFields {
 public:
  // Throws "WHERE: expected a JSON object, got ..." when j is not an object.
  JsonFields(const nlohmann::json& j, std::string where);

  bool has(const std::string& key) const;  // present and not null
  int64_t integer(const std::string& key, int64_t min = std::numeric_limits<int64_t>::min(),
                  int64_t max = std::numeric_limits<int64_t>::max()) const;
  int64_t integer(const std::string& key, int64_t fallback, int64_t min, int64_t max) const;
  double number(const std::string& key, double min = -std::numeric_limits<double>::infinity(),
                double max = std::numeric_limits<double>::infinity()) const;
  double number(const std::string& key, double fallback, double min, double max) const;
  double positive(const std::string& key) const;  // finite and > 0
  std::string string(const std::string& key) const;
  std::string string(const std::string& key, const std::string& fallback) const;
  bool boolean(const std::string& key) const;
  bool boolean(const std::string& key, bool fallback) const;
  const nlohmann::json& object(const std::string& key) const;

  // Throws "WHERE: KEY: WHAT, got VALUE" (VALUE: "nothing" when absent).
  [[noreturn]] void fail(const std::string& key, const std::string& what) const;

 private:
  const nlohmann::json& j_;
  std::string where_;
};

}  // namespace lorascope
