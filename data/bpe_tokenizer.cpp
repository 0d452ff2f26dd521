#include "data/bpe_tokenizer.h"
#include "data/tokenizer_pre_tokenizer.h"
#include "data/utf8.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>

namespace lorascope {

using nlohmann::json;

namespace {

// The ByteLevel pre-tokenizer's own regex (tokenizers' byte_level.rs, from GPT-2).
const char* kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

[[noreturn]] void fail(const std::string& where, const std::string& what) {
  throw std::runtime_error(where + ": " + what);
}

// Splits a valid UTF-8 string into its code points (as UTF-8 strings).
std::vector<std::string> utf8_chars(const std::string& s) {
  std::vector<std::string> out;
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 1;
    out.push_back(s.substr(i, std::min(n, s.size() - i)));
    i += n;
  }
  return out;
}

}  // namespace

struct BpeTokenizer::Regex {
  pcre2_code* code = nullptr;
  std::string pattern;
  Regex(const std::string& p, const std::string& where) : pattern(p) {
    int err = 0;
    PCRE2_SIZE offset = 0;
    code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(p.data()), p.size(),
                         PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err, &offset, nullptr);
    if (!code) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof msg);
      fail(where, "pre-tokenizer regex \"" + p + "\" does not compile at offset " + std::to_string(offset) + ": " +
                      reinterpret_cast<const char*>(msg));
    }
  }
  ~Regex() { pcre2_code_free(code); }
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Isolated split: every match and every non-empty gap between matches, in order.
  std::vector<std::string> split(const std::string& s) const {
    std::vector<std::string> out;
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(code, nullptr);
    size_t pos = 0, gap = 0;
    while (pos <= s.size()) {
      const int rc = pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(s.data()), s.size(), pos, 0, md, nullptr);
      if (rc < 0) break;  // PCRE2_ERROR_NOMATCH, or an invalid UTF-8 tail that nothing matches
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
      const size_t b = ov[0], e = ov[1];
      if (b > gap) out.push_back(s.substr(gap, b - gap));
      if (e > b) {
        out.push_back(s.substr(b, e - b));
        pos = gap = e;
      } else {  // empty match: step over one code point
        size_t next = b + 1;
        while (next < s.size() && (static_cast<unsigned char>(s[next]) & 0xC0) == 0x80) ++next;
        gap = b;
        pos = next;
      }
    }
    if (gap < s.size()) out.push_back(s.substr(gap));
    pcre2_match_data_free(md);
    return out;
  }
};

BpeTokenizer BpeTokenizer::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": tokenizer.json not found");
  std::stringstream ss;
  ss << in.rdbuf();
  json j;
  try {
    j = json::parse(ss.str());
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number like 1e999
    throw std::runtime_error(path + ": not valid JSON (" + e.what() + ")");
  }
  return from_json(j, path);
}

BpeTokenizer BpeTokenizer::from_json(const json& j, const std::string& where) try {
  BpeTokenizer t;
  t.where_ = where;
  if (!j.is_object() || !j.contains("model") || !j["model"].is_object()) fail(where, "model: missing");
  const auto& m = j["model"];
  if (m.value("type", std::string("BPE")) != "BPE") {
    fail(where, "model.type: expected \"BPE\" (byte-level BPE), got " + m["type"].dump() +
                    " (a sentencepiece model is read from tokenizer.model)");
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (m.contains(key) && !m[key].is_null() && m[key] != "") fail(where, std::string("model.") + key + ": not supported, expected null");
  }
  if (m.contains("byte_fallback") && m["byte_fallback"] == true) {
    fail(where, "model.byte_fallback: expected false (a byte-level BPE needs no fallback)");
  }
  if (m.contains("dropout") && !m["dropout"].is_null() && m["dropout"] != 0 && m["dropout"] != 0.0) {
    fail(where, "model.dropout: expected null (BPE dropout is for training)");
  }
  t.ignore_merges_ = m.contains("ignore_merges") && m["ignore_merges"] == true;
  if (!m.contains("vocab") || !m["vocab"].is_object()) fail(where, "model.vocab: expected an object {token: id}");
  int64_t max_id = -1;
  for (auto it = m["vocab"].begin(); it != m["vocab"].end(); ++it) {
    if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0 ||
        it.value().get<int64_t>() > std::numeric_limits<int32_t>::max()) {
      fail(where, "model.vocab: \"" + it.key() + "\": expected a non-negative id, got " + it.value().dump());
    }
    t.vocab_[it.key()] = it.value().get<int64_t>();
    max_id = std::max(max_id, it.value().get<int64_t>());
  }
  if (!m.contains("merges") || !m["merges"].is_array()) fail(where, "model.merges: expected an array");
  int64_t rank = 0;
  for (const auto& merge : m["merges"]) {
    const std::string at = "model.merges[" + std::to_string(rank) + "]";
    std::string a, b;
    if (merge.is_string()) {  // "a b" (tokenizers < 0.20)
      const std::string s = merge.get<std::string>();
      const auto sp = s.find(' ');
      if (sp == std::string::npos || sp == 0 || sp + 1 >= s.size() || s.find(' ', sp + 1) != std::string::npos) {
        fail(where, at + ": expected \"left right\", got " + merge.dump());
      }
      a = s.substr(0, sp);
      b = s.substr(sp + 1);
    } else if (merge.is_array() && merge.size() == 2 && merge[0].is_string() && merge[1].is_string()) {
      a = merge[0].get<std::string>();  // ["a", "b"] (tokenizers >= 0.20)
      b = merge[1].get<std::string>();
    } else {
      fail(where, at + ": expected \"left right\" or [\"left\", \"right\"], got " + merge.dump());
    }
    if (!t.vocab_.count(a + b)) fail(where, at + ": the merged token \"" + a + b + "\" is not in model.vocab");
    t.merge_rank_.emplace(a + " " + b, rank);  // the first (lowest) rank of a repeated merge wins
    ++rank;
  }

  if (j.contains("normalizer") && !j["normalizer"].is_null()) {
    fail(where, "normalizer: expected null (byte-level BPE tokenizers normalize nothing), got type " +
                    j["normalizer"].value("type", std::string("?")));
  }
  // Pre-tokenizer: ByteLevel, or Sequence[Split..., ByteLevel(use_regex=false)].
  if (!j.contains("pre_tokenizer") || !j["pre_tokenizer"].is_object()) {
    fail(where, "pre_tokenizer: expected ByteLevel or a Sequence ending in ByteLevel");
  }
  std::vector<json> steps;
  if (j["pre_tokenizer"].value("type", std::string()) == "Sequence") {
    for (const auto& s : j["pre_tokenizer"].value("pretokenizers", json::array())) steps.push_back(s);
  } else {
    steps.push_back(j["pre_tokenizer"]);
  }
  bool byte_level = false;
  for (size_t i = 0; i < steps.size(); ++i) {
    const auto& s = steps[i];
    const std::string type = s.value("type", std::string());
    const std::string at = "pre_tokenizer[" + std::to_string(i) + "]";
    if (type == "Split") {
      if (byte_level) fail(where, at + ": Split after ByteLevel is not supported");
      if (s.value("behavior", std::string()) != "Isolated" || s.value("invert", false)) {
        fail(where, at + ": expected behavior \"Isolated\" and invert false");
      }
      const auto& p = s.value("pattern", json::object());
      std::string pattern;
      if (p.contains("Regex") && p["Regex"].is_string()) {
        pattern = p["Regex"].get<std::string>();
      } else if (p.contains("String") && p["String"].is_string()) {
        // A literal: escape it for PCRE2 with \Q...\E.
        pattern = "\\Q" + p["String"].get<std::string>() + "\\E";
      } else {
        fail(where, at + ".pattern: expected {\"Regex\": ...} or {\"String\": ...}");
      }
      t.splits_.push_back(std::make_shared<const Regex>(pattern, where + ": " + at));
    } else if (type == "ByteLevel") {
      byte_level = true;
      t.add_prefix_space_ = s.value("add_prefix_space", false);
      if (s.value("use_regex", true)) t.splits_.push_back(std::make_shared<const Regex>(kGpt2Pattern, where));
    } else {
      fail(where, at + ": unsupported pre-tokenizer \"" + type + "\" (expected Split or ByteLevel)");
    }
  }
  if (!byte_level) fail(where, "pre_tokenizer: expected a ByteLevel step (only byte-level BPE is supported)");

  if (j.contains("added_tokens") && j["added_tokens"].is_array()) {
    for (const auto& a : j["added_tokens"]) {
      if (!a.contains("id") || !a["id"].is_number_integer() || a["id"].get<int64_t>() < 0 || !a.contains("content") ||
          !a["content"].is_string() || a["content"].get<std::string>().empty()) {
        fail(where, "added_tokens: expected {\"id\": non-negative integer, \"content\": non-empty string}, got " + a.dump());
      }
      t.added_.emplace_back(a["content"].get<std::string>(), a["id"].get<int64_t>());
      max_id = std::max(max_id, a["id"].get<int64_t>());
    }
  }
  std::stable_sort(t.added_.begin(), t.added_.end(),
                   [](const auto& x, const auto& y) { return x.first.size() > y.first.size(); });
  t.vocab_size_ = max_id + 1;
  t.id_to_token_.assign(static_cast<size_t>(t.vocab_size_), "");
  t.added_id_.assign(static_cast<size_t>(t.vocab_size_), false);
  for (const auto& [tok, id] : t.vocab_) t.id_to_token_[static_cast<size_t>(id)] = tok;
  for (const auto& [tok, id] : t.added_) {
    t.id_to_token_[static_cast<size_t>(id)] = tok;
    t.added_id_[static_cast<size_t>(id)] = true;
  }
  const auto first = [&](std::initializer_list<const char*> names) -> int64_t {
    for (const char* n : names) {
      if (t.token_id(n) >= 0) return t.token_id(n);
    }
    return -1;
  };
  t.bos_ = first({"<|begin_of_text|>", "<s>", "<|endoftext|>"});
  t.eos_ = first({"<|end_of_text|>", "</s>", "<|endoftext|>"});
  t.pad_ = first({"<pad>", "<|finetune_right_pad_id|>", "<|pad|>"});
  t.unk_ = first({"<unk>"});
  if (m.contains("unk_token") && m["unk_token"].is_string()) t.unk_ = t.token_id(m["unk_token"].get<std::string>());
  return t;
} catch (const nlohmann::json::exception& e) {
  // A well-formed JSON file of the wrong shape (a number where an object belongs, ...).
  throw std::runtime_error(where + ": unexpected JSON structure (" + e.what() + ")");
}

int64_t BpeTokenizer::token_id(const std::string& token) const {
  for (const auto& [content, id] : added_) {
    if (content == token) return id;
  }
  const auto it = vocab_.find(token);
  return it == vocab_.end() ? -1 : it->second;
}

std::vector<std::string> BpeTokenizer::pre_tokenize(const std::string& segment) const {
  std::vector<std::string> pieces = {add_prefix_space_ && (segment.empty() || segment[0] != ' ') ? " " + segment
                                                                                                  : segment};
  for (const auto& re : splits_) {
    std::vector<std::string> next;
    for (const auto& p : pieces) {
      for (auto& q : re->split(p)) next.push_back(std::move(q));
    }
    pieces.swap(next);
  }
  return pieces;
}

std::vector<std::string> BpeTokenizer::bpe(const std::string& mapped) const {
  auto symbols = utf8_chars(mapped);
  while (symbols.size() > 1) {
    int64_t best = std::numeric_limits<int64_t>::max();
    size_t at = 0;
    for (size_t i = 0; i + 1 < symbols.size(); ++i) {
      const auto it = merge_rank_.find(symbols[i] + " " + symbols[i + 1]);
      if (it != merge_rank_.end() && it->second < best) {
        best = it->second;
        at = i;
      }
    }
    if (best == std::numeric_limits<int64_t>::max()) break;
    symbols[at] += symbols[at + 1];
    symbols.erase(symbols.begin() + static_cast<std::ptrdiff_t>(at) + 1);
  }
  return symbols;
}

std::vector<int64_t> BpeTokenizer::encode(const std::string& text) const {
  std::vector<int64_t> ids;
  const auto& table = byte_to_unicode();
  const auto encode_segment = [&](const std::string& segment) {
    if (segment.empty()) return;
    for (const auto& piece : pre_tokenize(segment)) {
      std::string mapped;
      for (unsigned char c : piece) mapped += table[c];
      if (ignore_merges_) {
        const auto it = vocab_.find(mapped);
        if (it != vocab_.end()) {
          ids.push_back(it->second);
          continue;
        }
      }
      for (const auto& sym : bpe(mapped)) {
        const auto it = vocab_.find(sym);
        if (it != vocab_.end()) {
          ids.push_back(it->second);
        } else if (unk_ >= 0) {
          ids.push_back(unk_);
        } else {
          throw std::runtime_error(where_ + ": encode: \"" + sym + "\" is not in the vocabulary and there is no unk token");
        }
      }
    }
  };
  // Added tokens: leftmost occurrence, longest at that position.
  size_t pos = 0;
  while (pos < text.size()) {
    size_t best_at = std::string::npos;
    const std::pair<std::string, int64_t>* best = nullptr;
    for (const auto& a : added_) {
      const size_t at = text.find(a.first, pos);
      if (at != std::string::npos && (at < best_at || (at == best_at && a.first.size() > best->first.size()))) {
        best_at = at;
        best = &a;
      }
    }
    if (!best) {
      encode_segment(text.substr(pos));
      break;
    }
    encode_segment(text.substr(pos, best_at - pos));
    ids.push_back(best->second);
    pos = best_at + best->first.size();
  }
  return ids;
}

std::string BpeTokenizer::decode(const std::vector<int64_t>& ids) const {
  static const std::unordered_map<std::string, unsigned char> inverse = [] {
    std::unordered_map<std::string, unsigned char> m;
    for (int b = 0; b < 256; ++b) m[byte_to_unicode()[static_cast<size_t>(b)]] = static_cast<unsigned char>(b);
    return m;
  }();
  std::string out;
  for (int64_t id : ids) {
    if (id < 0 || id >= vocab_size_ || id_to_token_[static_cast<size_t>(id)].empty()) {
      throw std::out_of_range(where_ + ": decode: id " + std::to_string(id) + " is not in the vocabulary");
    }
    const auto& tok = id_to_token_[static_cast<size_t>(id)];
    if (added_id_[static_cast<size_t>(id)]) {
      out += tok;
      continue;
    }
    for (const auto& ch : utf8_chars(tok)) {
      const auto it = inverse.find(ch);
      if (it == inverse.end()) throw std::runtime_error(where_ + ": decode: token \"" + tok + "\" is not byte-level");
      out += static_cast<char>(it->second);
    }
  }
  return out;
}

}  // namespace lorascope
