// Schema-checked JSON configs, shared by every command (torchtune-style recipes):
//
//   defaults (schema) < config file < one entry of "runs" < one point of "grid" < --set KEY=VALUE
//
// A config file is nested JSON ({"optim": {"lr": 0.01}}); keys may also be written dotted
// ("optim.lr"). Keys starting with "_" ("_usage", "_comment") are notes and ignored. Two keys
// describe several runs:
//   "runs": [{"name": "gd", "optim.name": "sgd"}, ...]   explicit variants, each a named patch
//   "grid": {"optim.momentum": [0, 0.3], "seed": [0, 1]}   cartesian product, applied to each run
// Every key is checked against the schema (type, range, allowed values); an unknown key is
// rejected with the nearest valid one. Errors are ConfigError with "WHERE: KEY: expected ..., got
// ...", and the CLI turns them into exit code 2 before anything is written.
#pragma once

#include <nlohmann/json.hpp>

#include <deque>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace lorascope {

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class ValueType { Number, Integer, Bool, String, NumberList, StringList };

struct KeySpec {
  std::string key;  // dotted path, e.g. "optim.lr"
  ValueType type = ValueType::Number;
  nlohmann::json default_value;  // null: optional, absent unless given
  std::optional<double> min, max;
  bool min_exclusive = false;
  std::vector<std::string> choices;  // for strings
  std::string doc;
};

class ConfigSchema {
 public:
  // Fluent helpers for declaring keys.
  KeySpec& number(const std::string& key, nlohmann::json def, const std::string& doc);
  KeySpec& integer(const std::string& key, nlohmann::json def, const std::string& doc);
  KeySpec& boolean(const std::string& key, bool def, const std::string& doc);
  KeySpec& string(const std::string& key, nlohmann::json def, std::vector<std::string> choices,
                  const std::string& doc);
  KeySpec& number_list(const std::string& key, nlohmann::json def, const std::string& doc);
  KeySpec& string_list(const std::string& key, nlohmann::json def, const std::string& doc);

  const KeySpec* find(const std::string& key) const;
  std::string nearest(const std::string& key) const;
  // Throws ConfigError("WHERE: KEY: expected ..., got ...").
  void check(const std::string& key, const nlohmann::json& value, const std::string& where) const;
  nlohmann::json defaults() const;  // flat: dotted key -> default
  std::string describe() const;     // one line per key, for --help
  const std::deque<KeySpec>& keys() const { return keys_; }

 private:
  KeySpec& add(KeySpec spec);
  std::deque<KeySpec> keys_;  // deque: references from the helpers stay valid
};

struct RunSpec {
  std::string name;
  nlohmann::json config;     // nested, fully resolved
  nlohmann::json overrides;  // flat: what the runs/grid entries changed (for plots and indices)
};

// Flat dotted view of a nested object ("_" keys dropped); arrays are values, not levels.
nlohmann::json flatten(const nlohmann::json& nested);
nlohmann::json unflatten(const nlohmann::json& flat);
// Parses "a.b=value": value as JSON when it parses, else as a string.
std::pair<std::string, nlohmann::json> parse_override(const std::string& text);

// Cross-key checks on a resolved run (e.g. rank <= min(m, n)); throw ConfigError.
using RunCheck = std::function<void(const nlohmann::json& config, const std::string& where)>;

// Reads the config file (or only the schema defaults when path is empty), expands runs x grid,
// applies the overrides and validates each run. Run names are unique and filesystem-safe.
std::vector<RunSpec> resolve_runs(const std::string& path, const std::vector<std::string>& sets,
                                  const ConfigSchema& schema, const RunCheck& check);
// The same from an in-memory document (embedded demos, tests); where names it in messages.
std::vector<RunSpec> resolve_runs_json(const nlohmann::json& doc, const std::string& where,
                                       const std::vector<std::string>& sets,
                                       const ConfigSchema& schema, const RunCheck& check);

}  // namespace lorascope
