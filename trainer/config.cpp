#include "trainer/config.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include "util/json_file.h"

namespace lorascope {

using nlohmann::json;

KeySpec& ConfigSchema::add(KeySpec spec) {
  keys_.push_back(std::move(spec));
  return keys_.back();
}
KeySpec& ConfigSchema::number(const std::string& key, json def, const std::string& doc) {
  return add({key, ValueType::Number, std::move(def), {}, {}, false, {}, doc});
}
KeySpec& ConfigSchema::integer(const std::string& key, json def, const std::string& doc) {
  // A ceiling keeps products of counts (epochs x batches, ...) far from int64 overflow.
  return add({key, ValueType::Integer, std::move(def), {}, 1e12, false, {}, doc});
}
KeySpec& ConfigSchema::boolean(const std::string& key, bool def, const std::string& doc) {
  return add({key, ValueType::Bool, def, {}, {}, false, {}, doc});
}
KeySpec& ConfigSchema::string(const std::string& key, json def, std::vector<std::string> choices,
                              const std::string& doc) {
  return add({key, ValueType::String, std::move(def), {}, {}, false, std::move(choices), doc});
}
KeySpec& ConfigSchema::string_list(const std::string& key, json def, const std::string& doc) {
  return add({key, ValueType::StringList, std::move(def), {}, {}, false, {}, doc});
}
KeySpec& ConfigSchema::number_list(const std::string& key, json def, const std::string& doc) {
  return add({key, ValueType::NumberList, std::move(def), {}, {}, false, {}, doc});
}

const KeySpec* ConfigSchema::find(const std::string& key) const {
  for (const auto& k : keys_) {
    if (k.key == key) return &k;
  }
  return nullptr;
}

namespace {

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string type_name(ValueType t) {
  switch (t) {
    case ValueType::Number: return "a number";
    case ValueType::Integer: return "an integer";
    case ValueType::Bool: return "true or false";
    case ValueType::String: return "a string";
    case ValueType::NumberList: return "a list of numbers";
    case ValueType::StringList: return "a list of strings";
  }
  return "?";
}

std::string fmt_number(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

std::string range_text(const KeySpec& k) {
  std::string what = type_name(k.type);
  if (k.max && *k.max >= 1e12) {  // the generic integer ceiling is not worth mentioning
    KeySpec open = k;
    open.max.reset();
    return range_text(open);
  }
  if (k.min && k.max) {
    what += std::string(" in ") + (k.min_exclusive ? "(" : "[") + fmt_number(*k.min) + ", " +
            fmt_number(*k.max) + "]";
  } else if (k.min) {
    what += std::string(k.min_exclusive ? " > " : " >= ") + fmt_number(*k.min);
  } else if (k.max) {
    what += " <= " + fmt_number(*k.max);
  }
  if (!k.choices.empty()) {
    what = "one of";
    for (size_t i = 0; i < k.choices.size(); ++i) what += (i ? ", " : " ") + k.choices[i];
  }
  return what;
}

bool number_ok(const KeySpec& k, const json& v) {
  if (!v.is_number()) return false;
  const double x = v.get<double>();
  if (!std::isfinite(x)) return false;
  if (k.type == ValueType::Integer && (!v.is_number_integer() && std::floor(x) != x)) return false;
  if (k.min && (k.min_exclusive ? !(x > *k.min) : !(x >= *k.min))) return false;
  if (k.max && !(x <= *k.max)) return false;
  return true;
}

}  // namespace

std::string ConfigSchema::nearest(const std::string& key) const {
  std::string best;
  size_t best_d = std::string::npos;
  for (const auto& k : keys_) {
    // Compare with the whole key and with its last component, so "lr" suggests "optim.lr".
    const auto tail = k.key.substr(k.key.rfind('.') + 1);
    const auto key_tail = key.substr(key.rfind('.') + 1);
    size_t d = std::min(edit_distance(key, k.key), edit_distance(key_tail, tail) + 1);
    // A shared prefix ("lrate" / "lr") is a stronger hint than an equal edit distance.
    if (tail.size() >= 2 && key_tail.rfind(tail, 0) == 0) d = std::min<size_t>(d, 1);
    if (d < best_d) best_d = d, best = k.key;
  }
  return best_d <= std::max<size_t>(3, key.size() / 3) ? best : std::string();
}

void ConfigSchema::check(const std::string& key, const json& value, const std::string& where) const {
  const KeySpec* k = find(key);
  if (!k) {
    const auto hint = nearest(key);
    throw ConfigError(where + ": " + key + ": unknown key" +
                      (hint.empty() ? std::string() : " (did you mean " + hint + "?)"));
  }
  bool ok = false;
  switch (k->type) {
    case ValueType::Number:
    case ValueType::Integer: ok = number_ok(*k, value); break;
    case ValueType::Bool: ok = value.is_boolean(); break;
    case ValueType::String:
      ok = value.is_string() &&
           (k->choices.empty() || std::find(k->choices.begin(), k->choices.end(),
                                            value.get<std::string>()) != k->choices.end());
      break;
    case ValueType::NumberList:
      ok = value.is_array() && std::all_of(value.begin(), value.end(), [&](const json& x) {
             return number_ok(*k, x);
           });
      break;
    case ValueType::StringList:
      ok = value.is_array() && std::all_of(value.begin(), value.end(), [&](const json& x) {
             return x.is_string() && (k->choices.empty() ||
                                      std::find(k->choices.begin(), k->choices.end(),
                                                x.get<std::string>()) != k->choices.end());
           });
      break;
  }
  if (!ok && k->type == ValueType::Integer && value.is_number() && value.get<double>() > 1e12) {
    throw ConfigError(where + ": " + key + ": expected an integer <= 1e12, got " + value.dump());
  }
  if (!ok) {
    std::string what = range_text(*k);
    if (k->type == ValueType::NumberList && (k->min || k->max)) {
      what = "a list of numbers each" + what.substr(std::string("a list of numbers").size());
    }
    throw ConfigError(where + ": " + key + ": expected " + what + ", got " + value.dump());
  }
}

json ConfigSchema::defaults() const {
  json flat = json::object();
  for (const auto& k : keys_) {
    if (!k.default_value.is_null()) flat[k.key] = k.default_value;
  }
  return flat;
}

std::string ConfigSchema::describe() const {
  std::ostringstream out;
  for (const auto& k : keys_) {
    out << "  " << k.key << " (" << range_text(k)
        << (k.default_value.is_null() ? std::string(", optional")
                                      : ", default " + k.default_value.dump())
        << "): " << k.doc << "\n";
  }
  return out.str();
}

json flatten(const json& nested) {
  json flat = json::object();
  std::function<void(const json&, const std::string&)> walk = [&](const json& j,
                                                                  const std::string& prefix) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (!it.key().empty() && it.key()[0] == '_') continue;
      const std::string key = prefix.empty() ? it.key() : prefix + "." + it.key();
      if (it->is_object()) {
        walk(*it, key);
      } else {
        flat[key] = *it;
      }
    }
  };
  if (nested.is_object()) walk(nested, "");
  return flat;
}

json unflatten(const json& flat) {
  json nested = json::object();
  for (auto it = flat.begin(); it != flat.end(); ++it) {
    nested[json::json_pointer("/" + [&] {
      std::string p = it.key();
      std::replace(p.begin(), p.end(), '.', '/');
      return p;
    }())] = *it;
  }
  return nested;
}

std::pair<std::string, json> parse_override(const std::string& text) {
  const auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0) {
    throw ConfigError("--set " + text + ": expected KEY=VALUE, e.g. optim.lr=0.01");
  }
  try {
    (void)json(text).dump();  // JSON strings, and so configs and messages, must be UTF-8
  } catch (const json::type_error&) {
    throw ConfigError("--set " + json(text).dump(-1, ' ', false, json::error_handler_t::replace) +
                      ": expected UTF-8 text");
  }
  const std::string key = text.substr(0, eq), raw = text.substr(eq + 1);
  json value = json::parse(raw, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) value = raw;  // bare words are strings: optim.name=muon
  return {key, value};
}

namespace {

// Validates and merges a flat patch into a flat config.
void apply(json& flat, const json& patch, const std::string& where, const ConfigSchema& schema) {
  for (auto it = patch.begin(); it != patch.end(); ++it) {
    schema.check(it.key(), *it, where);
    flat[it.key()] = *it;
  }
}

bool safe_name(const std::string& name) {
  return !name.empty() && name.size() <= 200 && name != "." && name != ".." &&
         std::all_of(name.begin(), name.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' ||
                  c == '.' || c == '=' || c == '+';
         });
}

std::string value_label(const json& v) {
  std::string s = v.is_string() ? v.get<std::string>() : v.dump();
  for (auto& c : s) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '+')) c = '_';
  }
  return s;
}

}  // namespace

std::vector<RunSpec> resolve_runs_json(const json& doc, const std::string& where,
                                       const std::vector<std::string>& sets,
                                       const ConfigSchema& schema, const RunCheck& check) {
  if (!doc.is_object()) throw ConfigError(where + ": expected a JSON object at the top level");
  json base_doc = doc;
  json runs = json::array({json::object()});
  json grid = json::object();
  if (doc.contains("runs")) {
    runs = doc["runs"];
    base_doc.erase("runs");
    if (!runs.is_array() || runs.empty()) {
      throw ConfigError(where + ": runs: expected a non-empty list of objects");
    }
  }
  if (doc.contains("grid")) {
    grid = doc["grid"];
    base_doc.erase("grid");
    if (!grid.is_object()) throw ConfigError(where + ": grid: expected an object KEY: [values]");
    grid = flatten(grid);
  }

  json base = schema.defaults();
  apply(base, flatten(base_doc), where, schema);
  std::vector<std::pair<std::string, json>> overrides;
  for (const auto& s : sets) overrides.push_back(parse_override(s));
  // A --set of a key that the grid or a run also sets would replace every run's value while the
  // run names still carry the grid's (issue 15 item 10: "rank1..rank11", all rank 4).
  for (const auto& [key, value] : overrides) {
    const std::string what = "--set " + key + "=" + value.dump() + ": " + key + " is also set by ";
    if (grid.contains(key)) {
      throw ConfigError(what + where + "'s grid; --set would give every run of the grid the same " +
                        key + " under the grid's run names. Remove it from one of the two");
    }
    for (size_t r = 0; r < runs.size(); ++r) {
      if (runs[r].is_object() && flatten(runs[r]).contains(key)) {
        throw ConfigError(what + where + ": runs[" + std::to_string(r) + "]; --set would replace " +
                          "that run's value under its name. Remove it from one of the two");
      }
    }
  }

  // Cartesian product of the grid as a list of flat patches.
  std::vector<json> points{json::object()};
  for (auto it = grid.begin(); it != grid.end(); ++it) {
    if (!it->is_array() || it->empty()) {
      throw ConfigError(where + ": grid." + it.key() + ": expected a non-empty list of values");
    }
    std::vector<json> next;
    for (const auto& p : points) {
      for (size_t i = 0; i < it->size(); ++i) {
        schema.check(it.key(), (*it)[i], where + ": grid[" + std::to_string(i) + "]");
        json q = p;
        q[it.key()] = (*it)[i];
        next.push_back(q);
      }
    }
    points = std::move(next);
  }

  std::vector<RunSpec> out;
  std::set<std::string> names;
  for (size_t r = 0; r < runs.size(); ++r) {
    const std::string run_where = where + ": runs[" + std::to_string(r) + "]";
    if (!runs[r].is_object()) throw ConfigError(run_where + ": expected an object");
    json run_patch = flatten(runs[r]);
    for (const auto& point : points) {
      json flat = base;
      apply(flat, run_patch, run_where, schema);
      json changed = run_patch;
      apply(flat, point, where + ": grid", schema);
      std::string name = flat.value("name", std::string("run"));
      for (auto it = point.begin(); it != point.end(); ++it) {
        changed[it.key()] = *it;
        if (it.key() == "name") continue;
        name += "-" + it.key().substr(it.key().rfind('.') + 1) + value_label(*it);
      }
      for (auto [key, value] : overrides) {
        // --set lora.targets=q_proj,v_proj: comma lists for list-of-strings keys.
        const KeySpec* spec = schema.find(key);
        if (spec && spec->type == ValueType::StringList && value.is_string()) {
          json list = json::array();
          std::stringstream parts(value.get<std::string>());
          for (std::string item; std::getline(parts, item, ',');) list.push_back(item);
          value = list;
        }
        schema.check(key, value, "--set " + key + "=" + value.dump());
        flat[key] = value;
        if (key == "name") name = value.get<std::string>();
      }
      if (!safe_name(name)) {
        throw ConfigError(run_where + ": name: expected letters, digits and . _ - = +, got \"" +
                          name + "\"");
      }
      if (!names.insert(name).second) {
        throw ConfigError(run_where + ": name: \"" + name +
                          "\" is used by two runs; give each run its own name");
      }
      flat["name"] = name;
      // "sweep.lr": [..] next to "sweep.lr.from": a key cannot be a value and an object at once.
      for (auto it = flat.begin(); it != flat.end(); ++it) {
        const std::string prefix = it.key() + ".";
        for (auto jt = flat.begin(); jt != flat.end(); ++jt) {
          if (jt.key().rfind(prefix, 0) == 0) {
            throw ConfigError(run_where + ": " + it.key() + ": given both as a value and as an object (" +
                              jt.key() + "); expected one of the two");
          }
        }
      }
      json nested = unflatten(flat);
      if (check) check(nested, where + " (run " + name + ")");
      out.push_back({name, nested, changed});
    }
  }
  return out;
}

std::vector<RunSpec> resolve_runs(const std::string& path, const std::vector<std::string>& sets,
                                  const ConfigSchema& schema, const RunCheck& check) {
  json doc = json::object();
  if (!path.empty()) {
    try {
      doc = read_json_file(path);
    } catch (const JsonFileError& e) {
      throw ConfigError(e.what());
    }
  }
  return resolve_runs_json(doc, path.empty() ? std::string("defaults") : path, sets, schema, check);
}

}  // namespace lorascope
