#include "data/record_datasets.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <stdexcept>

#include "util/json_file.h"

namespace lorascope {

namespace fs = std::filesystem;
using nlohmann::json;

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path.string() + ": cannot open file");
  std::string s;
  in.seekg(0, std::ios::end);
  s.resize(static_cast<size_t>(in.tellg()));
  in.seekg(0);
  in.read(s.data(), static_cast<std::streamsize>(s.size()));
  if (!in) throw std::runtime_error(path.string() + ": cannot read file");
  return s;
}

namespace {

// A malformed record: thrown as "FILE:LINE: expected ...", or counted when skipping.
struct Malformed : std::runtime_error {
  using std::runtime_error::runtime_error;
};
[[noreturn]] void bad(const fs::path& path, int64_t line, const std::string& what) {
  throw Malformed(path.string() + ":" + std::to_string(line) + ": " + what);
}

std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> fields;
  size_t pos = 0;
  for (size_t tab; (tab = line.find('\t', pos)) != std::string::npos; pos = tab + 1) {
    fields.push_back(line.substr(pos, tab - pos));
  }
  fields.push_back(line.substr(pos));
  return fields;
}

}  // namespace

TextDataset load_glue_tsv(const fs::path& path, const LoadOptions& opt, int64_t& skipped) {
  TextDataset data{"glue_tsv", {}, {}};
  std::ifstream in(path);
  std::string line;
  if (!std::getline(in, line)) {
    throw std::runtime_error(path.string() + ":1: expected a header line, got an empty file");
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  const auto header = split_tabs(line);
  const auto col = [&](const char* name) {
    return std::find(header.begin(), header.end(), name) - header.begin();
  };
  const size_t sentence = col("sentence"), label = col("label");
  if (sentence == header.size()) {
    throw std::runtime_error(
        path.string() + ":1: expected a header with a \"sentence\" column, got \"" + line + "\"");
  }
  // A file without a label column (a GLUE test split) gives unlabelled examples.
  const bool labelled = label < header.size();
  int64_t max_label = -1;
  for (int64_t number = 2; std::getline(in, line); ++number) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    try {
      const auto fields = split_tabs(line);
      if (fields.size() != header.size()) {
        bad(path, number,
            "expected " + std::to_string(header.size()) + " tab-separated fields (" +
                (labelled ? "sentence, label" : "sentence") + "), got " +
                std::to_string(fields.size()));
      }
      if (fields[sentence].empty()) bad(path, number, "expected a non-empty sentence");
      int64_t y = -1;
      if (labelled) {
        const std::string& s = fields[label];
        char* end = nullptr;
        y = std::strtoll(s.c_str(), &end, 10);
        if (s.empty() || *end != '\0' || y < 0) {
          bad(path, number, "expected a non-negative integer label, got \"" + s + "\"");
        }
      }
      max_label = std::max(max_label, y);
      data.examples.push_back({fields[sentence], y, ""});
    } catch (const Malformed&) {
      if (!opt.skip_malformed) throw;
      ++skipped;
    }
  }
  for (int64_t y = 0; y <= max_label; ++y) data.label_names.push_back(std::to_string(y));
  return data;
}

namespace {

// The Stanford Alpaca prompt template.
std::string alpaca_prompt(const std::string& instruction, const std::string& input) {
  if (input.empty()) {
    return "Below is an instruction that describes a task. Write a response that appropriately "
           "completes the request.\n\n### Instruction:\n" +
           instruction + "\n\n### Response:\n";
  }
  return "Below is an instruction that describes a task, paired with an input that provides "
         "further "
         "context. Write a response that appropriately completes the request.\n\n### "
         "Instruction:\n" +
         instruction + "\n\n### Input:\n" + input + "\n\n### Response:\n";
}

TextExample alpaca_record(const json& r, const fs::path& path, int64_t line) {
  if (!r.is_object()) bad(path, line, "expected an object {instruction, input, output}");
  for (const char* key : {"instruction", "output"}) {
    if (!r.contains(key) || !r[key].is_string()) {
      bad(path, line, std::string("expected a string \"") + key + "\"");
    }
  }
  if (r.contains("input") && !r["input"].is_string() && !r["input"].is_null()) {
    bad(path, line, "expected \"input\" to be a string");
  }
  const std::string input =
      r.contains("input") && r["input"].is_string() ? r["input"].get<std::string>() : "";
  return {r["output"].get<std::string>(), -1,
          alpaca_prompt(r["instruction"].get<std::string>(), input)};
}

}  // namespace

// A JSON list (LINE = the record's 1-based position in it) or JSONL (LINE = the line).
TextDataset load_alpaca(const fs::path& path, const LoadOptions& opt, int64_t& skipped) {
  TextDataset data{"alpaca", {}, {}};
  const std::string text = read_file(path);
  const size_t first = text.find_first_not_of(" \t\r\n");
  auto add = [&](auto&& make) {
    try {
      data.examples.push_back(make());
    } catch (const Malformed&) {
      if (!opt.skip_malformed) throw;
      ++skipped;
    }
  };
  if (first != std::string::npos && text[first] == '[') {
    const json list = parse_json_text(text, path.string());
    for (size_t i = 0; i < list.size(); ++i) {
      add([&] { return alpaca_record(list[i], path, static_cast<int64_t>(i) + 1); });
    }
    return data;
  }
  int64_t number = 0;
  for (size_t pos = 0; pos < text.size();) {
    const size_t end = std::min(text.find('\n', pos), text.size());
    const std::string line = text.substr(pos, end - pos);
    pos = end + 1, ++number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    add([&] {
      json r;
      try {
        r = parse_json_text(line, path.string() + ":" + std::to_string(number));
      } catch (const JsonFileError& e) {
        throw Malformed(e.what());
      }
      return alpaca_record(r, path, number);
    });
  }
  return data;
}

}  // namespace lorascope
