#include "data/tokenizer_added_tokens.h"

#include <algorithm>
#include <limits>
#include <map>
#include <stdexcept>

#include "data/tokenizer_normalizer.h"
#include "data/unicode.h"

namespace lorascope {

using nlohmann::json;

namespace {

[[noreturn]] void fail(const std::string& where, const std::string& what) { throw std::runtime_error(where + ": " + what); }

// The code point that ends text[0, end) and the one that starts text[begin, ...).
char32_t char_before(const std::string& text, size_t end) {
  size_t b = end;
  while (b > 0 && end - b < 4) {
    --b;
    if ((static_cast<unsigned char>(text[b]) & 0xC0) != 0x80) break;
  }
  const auto u = unicode::decode_utf8(std::string_view(text).substr(b, end - b));
  return u.empty() ? 0 : u.back();
}

char32_t char_after(const std::string& text, size_t begin) {
  const auto u = unicode::decode_utf8(std::string_view(text).substr(begin, std::min<size_t>(4, text.size() - begin)));
  return u.empty() ? 0 : u.front();
}

bool is_word(char32_t c) { return unicode::props(c).token_word; }
bool is_space(char32_t c) { return unicode::props(c).token_space; }

size_t char_len_before(const std::string& text, size_t end) {
  size_t b = end;
  while (b > 0) {
    --b;
    if ((static_cast<unsigned char>(text[b]) & 0xC0) != 0x80) break;
  }
  return end - b;
}

size_t char_len_at(const std::string& text, size_t i) {
  size_t e = i + 1;
  while (e < text.size() && (static_cast<unsigned char>(text[e]) & 0xC0) == 0x80) ++e;
  return e - i;
}

}  // namespace

std::vector<AddedToken> TokenizerAddedTokens::parse(const json& j, const std::string& where) {
  std::vector<AddedToken> out;
  if (j.is_null()) return out;
  if (!j.is_array()) fail(where, "added_tokens: expected an array");
  for (size_t i = 0; i < j.size(); ++i) {
    const auto& a = j[i];
    const std::string at = "added_tokens[" + std::to_string(i) + "]";
    if (!a.is_object() || !a.contains("id") || !a["id"].is_number_integer() || a["id"].get<int64_t>() < 0 ||
        a["id"].get<int64_t>() > std::numeric_limits<int32_t>::max() || !a.contains("content") ||
        !a["content"].is_string() || a["content"].get<std::string>().empty()) {
      fail(where, at + ": expected {\"id\": non-negative integer, \"content\": non-empty string}, got " + a.dump());
    }
    AddedToken t;
    t.content = a["content"].get<std::string>();
    t.id = a["id"].get<int64_t>();
    const auto flag = [&](const char* key, bool fallback) {
      if (!a.contains(key) || a[key].is_null()) return fallback;
      if (!a[key].is_boolean()) fail(where, at + "." + key + ": expected true or false, got " + a[key].dump());
      return a[key].get<bool>();
    };
    t.special = flag("special", false);
    t.single_word = flag("single_word", false);
    t.lstrip = flag("lstrip", false);
    t.rstrip = flag("rstrip", false);
    t.normalized = flag("normalized", !t.special);
    out.push_back(std::move(t));
  }
  return out;
}

TokenizerAddedTokens::TokenizerAddedTokens(const std::vector<AddedToken>& tokens, const TokenizerNormalizer& normalizer)
    : tokens_(tokens) {
  // A content given twice: the last entry wins, as in tokenizers' map from content to id.
  std::map<std::string, size_t> last;
  for (size_t i = 0; i < tokens_.size(); ++i) last[tokens_[i].content] = i;
  for (size_t i = 0; i < tokens_.size(); ++i) {
    const auto& t = tokens_[i];
    if (last[t.content] != i) continue;
    if (t.normalized) {
      const std::string n = normalizer.normalize(t.content);
      if (!n.empty()) normalized_.add(n, i);
    } else {
      raw_.add(t.content, i);
    }
  }
}

void TokenizerAddedTokens::Matcher::add(const std::string& content, size_t token) {
  by_first_byte[static_cast<unsigned char>(content[0])].push_back(patterns.size());
  patterns.emplace_back(content, token);
}

void TokenizerAddedTokens::Matcher::split(const std::string& text, bool at_start, const std::vector<AddedToken>& tokens,
                                          std::vector<Piece>& out) const {
  size_t start_offset = 0;  // end of the last piece
  const auto gap = [&](size_t b, size_t e) {
    if (e > b) out.push_back({text.substr(b, e - b), -1, at_start && b == 0});
  };
  for (size_t pos = 0; pos < text.size();) {
    // The longest pattern starting at pos.
    const std::pair<std::string, size_t>* best = nullptr;
    for (size_t k : by_first_byte[static_cast<unsigned char>(text[pos])]) {
      const auto& p = patterns[k];
      if ((!best || p.first.size() > best->first.size()) && text.compare(pos, p.first.size(), p.first) == 0) best = &p;
    }
    if (!best) {
      ++pos;
      continue;
    }
    size_t start = pos, stop = pos + best->first.size();
    pos = stop;  // the next match is searched after this one, kept or not
    const AddedToken& t = tokens[best->second];
    if (t.single_word) {
      const bool left_ok = start == 0 || !is_word(char_before(text, start));
      const bool right_ok = stop == text.size() || !is_word(char_after(text, stop));
      if (!left_ok || !right_ok) continue;
    }
    if (t.lstrip) {
      size_t b = start;
      while (b > 0 && is_space(char_before(text, b))) b -= char_len_before(text, b);
      start = std::max(b, start_offset);
    }
    if (t.rstrip) {
      while (stop < text.size() && is_space(char_after(text, stop))) stop += char_len_at(text, stop);
    }
    gap(start_offset, start);
    out.push_back({text.substr(start, stop - start), t.id, false});
    start_offset = stop;
  }
  gap(start_offset, text.size());
}

std::vector<TokenizerAddedTokens::Piece> TokenizerAddedTokens::split(const std::string& text,
                                                                     const TokenizerNormalizer& normalizer) const {
  std::vector<Piece> raw;
  raw_.split(text, true, tokens_, raw);
  std::vector<Piece> out;
  for (auto& p : raw) {
    if (p.id >= 0) {
      out.push_back(std::move(p));
      continue;
    }
    const std::string n = normalizer.normalize(p.text);
    normalized_.split(n, p.at_start, tokens_, out);
  }
  return out;
}

int64_t TokenizerAddedTokens::id_of(const std::string& content) const {
  int64_t id = -1;
  for (const auto& t : tokens_) {
    if (t.content == content) id = t.id;
  }
  return id;
}

}  // namespace lorascope
