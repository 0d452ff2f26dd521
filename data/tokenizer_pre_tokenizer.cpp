#include "data/tokenizer_pre_tokenizer.h"

#include <algorithm>
#include <stdexcept>

#include "data/tokenizer_regex.h"
#include "data/unicode.h"
#include "data/utf8.h"

namespace lorascope {

using nlohmann::json;
using Behavior = TokenizerPreTokenizer::Behavior;
using Step = TokenizerPreTokenizer::Step;

namespace {

// The ByteLevel pre-tokenizer's own regex (tokenizers' byte_level.rs, from GPT-2).
const char* kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
// The Whitespace pre-tokenizer's regex: its matches are the pieces.
const char* kWhitespacePattern = R"(\w+|[^\w\s]+)";

[[noreturn]] void fail(const std::string& where, const std::string& what) { throw std::runtime_error(where + ": " + what); }

struct Piece {
  std::string text;
  bool at_start;  // begins at offset 0 of the input
};
using Span = std::pair<size_t, size_t>;

// One code point of s at i (an invalid byte counts as one character) and its length.
std::pair<char32_t, size_t> char_at(const std::string& s, size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  const size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
  if (n == 0 || i + n > s.size()) return {0xFFFD, 1};
  const auto u = unicode::decode_utf8(std::string_view(s).substr(i, n));
  return u.size() == 1 && u[0] != 0xFFFD ? std::make_pair(u[0], n) : std::make_pair(char32_t{0xFFFD}, size_t{1});
}

// Each character satisfying pred is a match of its own.
template <typename Pred>
std::vector<Span> char_matches(const std::string& s, Pred pred) {
  std::vector<Span> out;
  for (size_t i = 0; i < s.size();) {
    const auto [c, n] = char_at(s, i);
    if (pred(c)) out.emplace_back(i, i + n);
    i += n;
  }
  return out;
}

std::vector<Span> literal_matches(const std::string& s, const std::string& lit) {
  std::vector<Span> out;
  if (lit.empty()) return out;
  for (size_t at = s.find(lit); at != std::string::npos; at = s.find(lit, at + lit.size())) out.emplace_back(at, at + lit.size());
  return out;
}

// tokenizers' NormalizedString::split: the matches and the gaps between them, (inverted,)
// combined by the behavior; empty pieces are dropped.
std::vector<Piece> split_piece(const Piece& p, const std::vector<Span>& matches, Behavior behavior, bool invert) {
  std::vector<std::pair<Span, bool>> parts;
  size_t prev = 0;
  for (const auto& m : matches) {
    if (m.first > prev) parts.push_back({{prev, m.first}, false});
    parts.push_back({m, true});
    prev = m.second;
  }
  if (prev < p.text.size() || parts.empty()) parts.push_back({{prev, p.text.size()}, false});
  if (invert) {
    for (auto& part : parts) part.second = !part.second;
  }
  std::vector<Span> spans;
  bool previous_match = false;
  switch (behavior) {
    case Behavior::Removed:
      for (const auto& [s, m] : parts) {
        if (!m) spans.push_back(s);
      }
      break;
    case Behavior::Isolated:
      for (const auto& part : parts) spans.push_back(part.first);
      break;
    case Behavior::MergedWithPrevious:
      for (const auto& [s, m] : parts) {
        if (m && !previous_match && !spans.empty()) {
          spans.back().second = s.second;
        } else {
          spans.push_back(s);
        }
        previous_match = m;
      }
      break;
    case Behavior::MergedWithNext:
      for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
        if (it->second && !previous_match && !spans.empty()) {
          spans.back().first = it->first.first;
        } else {
          spans.push_back(it->first);
        }
        previous_match = it->second;
      }
      std::reverse(spans.begin(), spans.end());
      break;
    case Behavior::Contiguous:
      for (const auto& [s, m] : parts) {
        if (m == previous_match && !spans.empty()) {
          spans.back().second = s.second;
        } else {
          spans.push_back(s);
        }
        previous_match = m;
      }
      break;
  }
  std::vector<Piece> out;
  for (const auto& [b, e] : spans) {
    if (e > b) out.push_back({p.text.substr(b, e - b), p.at_start && b == 0});
  }
  return out;
}

Behavior parse_behavior(const json& j, const std::string& where, const std::string& at) {
  if (!j.contains("behavior")) return Behavior::Isolated;
  const std::string b = j["behavior"].is_string() ? j["behavior"].get<std::string>() : "";
  if (b == "Removed") return Behavior::Removed;
  if (b == "Isolated") return Behavior::Isolated;
  if (b == "MergedWithPrevious") return Behavior::MergedWithPrevious;
  if (b == "MergedWithNext") return Behavior::MergedWithNext;
  if (b == "Contiguous") return Behavior::Contiguous;
  fail(where, at + ".behavior: expected Removed, Isolated, MergedWithPrevious, MergedWithNext or Contiguous, got " +
                  j["behavior"].dump());
}

bool flag(const json& j, const char* key, bool fallback, const std::string& where, const std::string& at) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  if (!j[key].is_boolean()) fail(where, at + "." + key + ": expected true or false, got " + j[key].dump());
  return j[key].get<bool>();
}

void parse(const json& j, const std::string& where, const std::string& at, std::vector<Step>& steps) {
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string()) fail(where, at + ": expected an object with a \"type\"");
  const std::string type = j["type"].get<std::string>();
  Step s{};
  if (type == "Sequence") {
    if (!j.contains("pretokenizers") || !j["pretokenizers"].is_array()) fail(where, at + ".pretokenizers: expected an array");
    for (size_t i = 0; i < j["pretokenizers"].size(); ++i) {
      parse(j["pretokenizers"][i], where, at + "[" + std::to_string(i) + "]", steps);
    }
    return;
  } else if (type == "BertPreTokenizer") {
    s.kind = Step::Bert;
  } else if (type == "Whitespace") {
    s.kind = Step::Whitespace;
    s.regex = std::make_shared<const TokenizerRegex>(kWhitespacePattern, where);
  } else if (type == "WhitespaceSplit") {
    s.kind = Step::WhitespaceSplit;
  } else if (type == "Punctuation") {
    s.kind = Step::Punctuation;
    s.behavior = parse_behavior(j, where, at);
  } else if (type == "Digits") {
    s.kind = Step::Digits;
    s.flag = flag(j, "individual_digits", false, where, at);
  } else if (type == "CharDelimiterSplit") {
    s.kind = Step::CharDelimiter;
    if (!j.contains("delimiter") || !j["delimiter"].is_string() ||
        unicode::decode_utf8(j["delimiter"].get<std::string>()).size() != 1) {
      fail(where, at + ".delimiter: expected one character");
    }
    s.literal = j["delimiter"].get<std::string>();
  } else if (type == "Split") {
    s.kind = Step::Split;
    s.behavior = parse_behavior(j, where, at);
    s.invert = flag(j, "invert", false, where, at);
    const json& p = j.contains("pattern") ? j["pattern"] : json();
    if (p.is_object() && p.contains("Regex") && p["Regex"].is_string()) {
      s.regex = std::make_shared<const TokenizerRegex>(p["Regex"].get<std::string>(), where + ": " + at + ".pattern");
    } else if (p.is_object() && p.contains("String") && p["String"].is_string()) {
      s.literal = p["String"].get<std::string>();
    } else {
      fail(where, at + ".pattern: expected {\"Regex\": ...} or {\"String\": ...}");
    }
  } else if (type == "ByteLevel") {
    s.kind = Step::ByteLevel;
    s.flag = flag(j, "add_prefix_space", true, where, at);
    s.use_regex = flag(j, "use_regex", true, where, at);
    if (s.use_regex) s.regex = std::make_shared<const TokenizerRegex>(kGpt2Pattern, where);
  } else if (type == "Metaspace") {
    s.kind = Step::Metaspace;
    s.literal = j.contains("replacement") && j["replacement"].is_string() ? j["replacement"].get<std::string>() : "\xE2\x96\x81";
    if (unicode::decode_utf8(s.literal).size() != 1) fail(where, at + ".replacement: expected one character");
    s.flag = flag(j, "split", true, where, at);
    if (j.contains("prepend_scheme") && j["prepend_scheme"].is_string()) {
      s.prepend_scheme = j["prepend_scheme"].get<std::string>();
      if (s.prepend_scheme != "always" && s.prepend_scheme != "first" && s.prepend_scheme != "never") {
        fail(where, at + ".prepend_scheme: expected always, first or never, got " + j["prepend_scheme"].dump());
      }
    } else {  // files before tokenizers 0.14: add_prefix_space
      s.prepend_scheme = flag(j, "add_prefix_space", true, where, at) ? "always" : "never";
    }
  } else {
    fail(where, at + ": unsupported pre-tokenizer \"" + type +
                    "\" (expected BertPreTokenizer, Whitespace, WhitespaceSplit, Punctuation, Digits, "
                    "CharDelimiterSplit, Split, ByteLevel, Metaspace or Sequence)");
  }
  steps.push_back(std::move(s));
}

bool rust_whitespace(char32_t c) { return unicode::props(c).bert_split == unicode::BertSplit::Space; }
bool bert_punctuation(char32_t c) { return unicode::props(c).bert_split == unicode::BertSplit::Punct; }

}  // namespace

const std::vector<std::string>& byte_to_unicode() {
  static const std::vector<std::string> table = [] {
    std::vector<std::string> t(256);
    uint32_t n = 0;
    for (uint32_t b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      append_utf8(t[b], printable ? b : 256 + n++);
    }
    return t;
  }();
  return table;
}

TokenizerPreTokenizer TokenizerPreTokenizer::from_json(const json& j, const std::string& where) {
  TokenizerPreTokenizer t;
  if (!j.is_null()) parse(j, where, "pre_tokenizer", t.steps_);
  for (const auto& s : t.steps_) t.byte_level_ = t.byte_level_ || s.kind == Step::ByteLevel;
  return t;
}

TokenizerPreTokenizer TokenizerPreTokenizer::bert() {
  TokenizerPreTokenizer t;
  Step s{};
  s.kind = Step::Bert;
  t.steps_.push_back(s);
  return t;
}

std::vector<std::string> TokenizerPreTokenizer::split(const std::string& text, bool at_start, bool map_bytes) const {
  std::vector<Piece> pieces = {{text, at_start}};
  const auto each = [&](auto&& f) {
    std::vector<Piece> next;
    for (const auto& p : pieces) {
      for (auto& q : f(p)) next.push_back(std::move(q));
    }
    pieces.swap(next);
  };
  for (const auto& s : steps_) {
    switch (s.kind) {
      case Step::Bert:
        each([](const Piece& p) { return split_piece(p, char_matches(p.text, rust_whitespace), Behavior::Removed, false); });
        each([](const Piece& p) { return split_piece(p, char_matches(p.text, bert_punctuation), Behavior::Isolated, false); });
        break;
      case Step::Whitespace:  // the regex's matches are the pieces: inverted, gaps removed
        each([&](const Piece& p) { return split_piece(p, s.regex->find_all(p.text), Behavior::Removed, true); });
        break;
      case Step::WhitespaceSplit:
        each([](const Piece& p) { return split_piece(p, char_matches(p.text, rust_whitespace), Behavior::Removed, false); });
        break;
      case Step::Punctuation:
        each([&](const Piece& p) { return split_piece(p, char_matches(p.text, bert_punctuation), s.behavior, false); });
        break;
      case Step::Digits: {
        const auto numeric = [](char32_t c) {
          const auto g = unicode::props(c).gc;
          return g == unicode::Gc::Nd || g == unicode::Gc::Nl || g == unicode::Gc::No;
        };
        each([&](const Piece& p) {
          return split_piece(p, char_matches(p.text, numeric), s.flag ? Behavior::Isolated : Behavior::Contiguous, false);
        });
        break;
      }
      case Step::CharDelimiter:
        each([&](const Piece& p) { return split_piece(p, literal_matches(p.text, s.literal), Behavior::Removed, false); });
        break;
      case Step::Split:
        each([&](const Piece& p) {
          return split_piece(p, s.regex ? s.regex->find_all(p.text) : literal_matches(p.text, s.literal), s.behavior, s.invert);
        });
        break;
      case Step::ByteLevel:
        each([&](const Piece& p) {
          Piece q = p;
          if (s.flag && (q.text.empty() || q.text[0] != ' ')) q.text = " " + q.text;
          return s.use_regex ? split_piece(q, s.regex->find_all(q.text), Behavior::Isolated, false) : std::vector<Piece>{q};
        });
        if (map_bytes) {
          const auto& table = byte_to_unicode();
          for (auto& p : pieces) {
            std::string mapped;
            for (unsigned char c : p.text) mapped += table[c];
            p.text = std::move(mapped);
          }
        }
        break;
      case Step::Metaspace:
        each([&](const Piece& p) {
          Piece q{std::string(), p.at_start};
          for (char c : p.text) {
            if (c == ' ') {
              q.text += s.literal;
            } else {
              q.text += c;
            }
          }
          const bool prepend = s.prepend_scheme == "always" || (s.prepend_scheme == "first" && p.at_start);
          if (prepend && q.text.compare(0, s.literal.size(), s.literal) != 0) q.text = s.literal + q.text;
          return s.flag ? split_piece(q, literal_matches(q.text, s.literal), Behavior::MergedWithNext, false)
                        : std::vector<Piece>{q};
        });
        break;
    }
  }
  std::vector<std::string> out;
  out.reserve(pieces.size());
  for (auto& p : pieces) {
    if (!p.text.empty()) out.push_back(std::move(p.text));
  }
  return out;
}

}  // namespace lorascope
