#include "data/tokenizer_normalizer.h"

#include <stdexcept>

#include "data/tokenizer_regex.h"
#include "data/unicode.h"

namespace lorascope {

using nlohmann::json;

namespace {

[[noreturn]] void fail(const std::string& where, const std::string& what) { throw std::runtime_error(where + ": " + what); }

bool flag(const json& j, const char* key, bool fallback, const std::string& where, const std::string& at) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  if (!j[key].is_boolean()) fail(where, at + "." + key + ": expected true or false, got " + j[key].dump());
  return j[key].get<bool>();
}

std::string text_field(const json& j, const char* key, const std::string& where, const std::string& at) {
  if (!j.contains(key) || !j[key].is_string()) fail(where, at + "." + key + ": expected a string");
  return j[key].get<std::string>();
}

void parse(const json& j, const std::string& where, const std::string& at, std::vector<TokenizerNormalizer::Step>& steps) {
  using Step = TokenizerNormalizer::Step;
  if (j.is_null()) return;
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string()) fail(where, at + ": expected an object with a \"type\"");
  const std::string type = j["type"].get<std::string>();
  Step s{};
  if (type == "Sequence") {
    if (!j.contains("normalizers") || !j["normalizers"].is_array()) fail(where, at + ".normalizers: expected an array");
    for (size_t i = 0; i < j["normalizers"].size(); ++i) {
      parse(j["normalizers"][i], where, at + ".normalizers[" + std::to_string(i) + "]", steps);
    }
    return;
  } else if (type == "BertNormalizer") {
    s.kind = Step::Bert;
    s.bert.clean_text = flag(j, "clean_text", true, where, at);
    s.bert.handle_chinese_chars = flag(j, "handle_chinese_chars", true, where, at);
    s.bert.lowercase = flag(j, "lowercase", true, where, at);
    s.bert.strip_accents = flag(j, "strip_accents", s.bert.lowercase, where, at);
  } else if (type == "Lowercase") {
    s.kind = Step::Lowercase;
  } else if (type == "NFD") {
    s.kind = Step::Nfd;
  } else if (type == "StripAccents") {
    s.kind = Step::StripAccents;
  } else if (type == "Strip") {
    s.kind = Step::Strip;
    s.left = flag(j, "strip_left", true, where, at);
    s.right = flag(j, "strip_right", true, where, at);
  } else if (type == "Prepend") {
    s.kind = Step::Prepend;
    s.content = text_field(j, "prepend", where, at);
  } else if (type == "Replace") {
    s.kind = Step::Replace;
    s.content = text_field(j, "content", where, at);
    const json& p = j.contains("pattern") ? j["pattern"] : json();
    if (p.is_object() && p.contains("String") && p["String"].is_string() && !p["String"].get<std::string>().empty()) {
      s.pattern = p["String"].get<std::string>();
    } else if (p.is_object() && p.contains("Regex") && p["Regex"].is_string()) {
      s.regex = std::make_shared<const TokenizerRegex>(p["Regex"].get<std::string>(), where + ": " + at + ".pattern");
    } else {
      fail(where, at + ".pattern: expected {\"String\": non-empty} or {\"Regex\": ...}");
    }
  } else {
    fail(where, at + ": unsupported normalizer \"" + type +
                    "\" (expected BertNormalizer, Lowercase, NFD, StripAccents, Strip, Replace, Prepend or Sequence)");
  }
  steps.push_back(std::move(s));
}

bool rust_whitespace(char32_t c) { return unicode::props(c).bert_split == unicode::BertSplit::Space; }

std::u32string strip_marks(std::u32string_view s) {
  std::u32string out;
  for (char32_t c : s) {
    if (!unicode::props(c).nonspacing_mark) out += c;
  }
  return out;
}

std::string replace_all(const std::string& s, const std::string& from, const std::string& to) {
  std::string out;
  size_t pos = 0;
  for (size_t at; (at = s.find(from, pos)) != std::string::npos; pos = at + from.size()) {
    out.append(s, pos, at - pos);
    out += to;
  }
  out.append(s, pos, std::string::npos);
  return out;
}

}  // namespace

std::u32string bert_normalize(std::u32string_view text, const BertNormalizerOptions& o) {
  std::u32string s;
  s.reserve(text.size());
  for (char32_t c : text) {
    const auto p = unicode::props(c);
    if (o.clean_text && p.bert_clean == unicode::BertClean::Remove) continue;
    if (o.clean_text && p.bert_clean == unicode::BertClean::Space) c = U' ';
    if (o.handle_chinese_chars && p.chinese) {
      s += U' ';
      s += c;
      s += U' ';
    } else {
      s += c;
    }
  }
  if (o.strip_accents) s = strip_marks(unicode::nfd(s));
  if (o.lowercase) s = unicode::lowercase(s);
  return s;
}

TokenizerNormalizer TokenizerNormalizer::from_json(const json& j, const std::string& where) {
  TokenizerNormalizer n;
  parse(j, where, "normalizer", n.steps_);
  return n;
}

TokenizerNormalizer TokenizerNormalizer::bert(const BertNormalizerOptions& options) {
  TokenizerNormalizer n;
  Step s{};
  s.kind = Step::Bert;
  s.bert = options;
  n.steps_.push_back(s);
  return n;
}

std::string TokenizerNormalizer::normalize(const std::string& text) const {
  std::string s = text;
  for (const auto& step : steps_) {
    switch (step.kind) {
      case Step::Bert:
        s = unicode::encode_utf8(bert_normalize(unicode::decode_utf8(s), step.bert));
        break;
      case Step::Lowercase:
        s = unicode::encode_utf8(unicode::lowercase(unicode::decode_utf8(s)));
        break;
      case Step::Nfd:
        s = unicode::encode_utf8(unicode::nfd(unicode::decode_utf8(s)));
        break;
      case Step::StripAccents:
        s = unicode::encode_utf8(strip_marks(unicode::decode_utf8(s)));
        break;
      case Step::Strip: {
        auto u = unicode::decode_utf8(s);
        size_t b = 0, e = u.size();
        while (step.left && b < e && rust_whitespace(u[b])) ++b;
        while (step.right && e > b && rust_whitespace(u[e - 1])) --e;
        s = unicode::encode_utf8(std::u32string_view(u).substr(b, e - b));
        break;
      }
      case Step::Prepend:
        if (!s.empty()) s = step.content + s;
        break;
      case Step::Replace:
        if (!step.regex) {
          s = replace_all(s, step.pattern, step.content);
        } else {
          std::string out;
          size_t pos = 0;
          for (const auto& [b, e] : step.regex->find_all(s)) {
            out.append(s, pos, b - pos);
            out += step.content;
            pos = e;
          }
          out.append(s, pos, std::string::npos);
          s = std::move(out);
        }
        break;
    }
  }
  return s;
}

}  // namespace lorascope
