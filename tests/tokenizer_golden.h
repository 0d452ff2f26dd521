// The golden cases of tests/golden/tokenizers/cases.json (written by
// tests/golden/make_tokenizers.py from the `tokenizers` library): each a tokenizer file, a text
// (and pair), and the ids and type ids tokenizers gave.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "data/tokenizer.h"
#include "data_fixtures.h"

namespace lorascope {

inline const std::string& golden_tokenizers_dir() {
  static const std::string dir = std::string(LORASCOPE_SOURCE_DIR) + "/tests/golden/tokenizers/";
  return dir;
}

// Checks every case whose file starts with prefix; returns how many there were.
inline size_t check_golden_tokenizer_cases(const std::string& prefix) {
  const auto j = nlohmann::json::parse(read_all(golden_tokenizers_dir() + "cases.json"));
  const auto& texts = j.at("texts");
  std::map<std::string, Tokenizer> loaded;
  size_t n = 0;
  for (const auto& c : j.at("cases")) {
    const std::string file = c.at("file");
    if (file.compare(0, prefix.size(), prefix) != 0) continue;
    auto it = loaded.find(file);
    if (it == loaded.end()) it = loaded.emplace(file, Tokenizer::load(golden_tokenizers_dir() + file)).first;
    const Tokenizer& tok = it->second;
    const std::string text = texts.at(c.at("text").get<size_t>());
    const bool pair = !c.at("pair").is_null();
    const std::string second = pair ? texts.at(c.at("pair").get<size_t>()).get<std::string>() : "";
    TokenizerEncoding got;
    if (c.at("special").get<bool>()) {
      got = tok.encode_with_specials(text, pair ? &second : nullptr, c.at("max_len").get<int64_t>());
    } else {
      got.ids = tok.encode(text);
      got.type_ids.assign(got.ids.size(), 0);
    }
    const auto want_ids = c.at("ids").get<std::vector<int64_t>>();
    const auto want_types = c.at("type_ids").get<std::vector<int64_t>>();
    EXPECT_EQ(got.ids, want_ids) << file << ": " << c.dump() << "\ntext: " << text;
    EXPECT_EQ(got.type_ids, want_types) << file << ": " << c.dump();
    ++n;
  }
  return n;
}

}  // namespace lorascope
