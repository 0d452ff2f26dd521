#include "data/tokenizer_regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <map>
#include <mutex>
#include <stdexcept>

#include "data/unicode.h"

namespace lorascope {

namespace {

using Ranges = std::vector<std::pair<char32_t, char32_t>>;
using unicode::Gc;

// General-category property names (short and long, compared lowercased without '_', '-',
// ' ') -> the categories they cover.
const std::map<std::string, std::vector<Gc>>& category_names() {
  static const std::map<std::string, std::vector<Gc>> names = [] {
    std::map<std::string, std::vector<Gc>> m;
    const auto add = [&](std::initializer_list<const char*> keys, std::vector<Gc> gcs) {
      for (const char* k : keys) m[k] = gcs;
    };
    add({"l", "letter"}, {Gc::Lu, Gc::Ll, Gc::Lt, Gc::Lm, Gc::Lo});
    add({"lc", "l&", "casedletter"}, {Gc::Lu, Gc::Ll, Gc::Lt});
    add({"lu", "uppercaseletter"}, {Gc::Lu});
    add({"ll", "lowercaseletter"}, {Gc::Ll});
    add({"lt", "titlecaseletter"}, {Gc::Lt});
    add({"lm", "modifierletter"}, {Gc::Lm});
    add({"lo", "otherletter"}, {Gc::Lo});
    add({"m", "mark", "combiningmark"}, {Gc::Mn, Gc::Mc, Gc::Me});
    add({"mn", "nonspacingmark"}, {Gc::Mn});
    add({"mc", "spacingmark"}, {Gc::Mc});
    add({"me", "enclosingmark"}, {Gc::Me});
    add({"n", "number"}, {Gc::Nd, Gc::Nl, Gc::No});
    add({"nd", "decimalnumber", "digit"}, {Gc::Nd});
    add({"nl", "letternumber"}, {Gc::Nl});
    add({"no", "othernumber"}, {Gc::No});
    add({"p", "punctuation", "punct"}, {Gc::Pc, Gc::Pd, Gc::Ps, Gc::Pe, Gc::Pi, Gc::Pf, Gc::Po});
    add({"pc", "connectorpunctuation"}, {Gc::Pc});
    add({"pd", "dashpunctuation"}, {Gc::Pd});
    add({"ps", "openpunctuation"}, {Gc::Ps});
    add({"pe", "closepunctuation"}, {Gc::Pe});
    add({"pi", "initialpunctuation"}, {Gc::Pi});
    add({"pf", "finalpunctuation"}, {Gc::Pf});
    add({"po", "otherpunctuation"}, {Gc::Po});
    add({"s", "symbol"}, {Gc::Sm, Gc::Sc, Gc::Sk, Gc::So});
    add({"sm", "mathsymbol"}, {Gc::Sm});
    add({"sc", "currencysymbol"}, {Gc::Sc});
    add({"sk", "modifiersymbol"}, {Gc::Sk});
    add({"so", "othersymbol"}, {Gc::So});
    add({"z", "separator"}, {Gc::Zs, Gc::Zl, Gc::Zp});
    add({"zs", "spaceseparator"}, {Gc::Zs});
    add({"zl", "lineseparator"}, {Gc::Zl});
    add({"zp", "paragraphseparator"}, {Gc::Zp});
    add({"c", "other"}, {Gc::Cc, Gc::Cf, Gc::Cs, Gc::Co, Gc::Cn});
    add({"cc", "control", "cntrl"}, {Gc::Cc});
    add({"cf", "format"}, {Gc::Cf});
    add({"cs", "surrogate"}, {Gc::Cs});
    add({"co", "privateuse"}, {Gc::Co});
    add({"cn", "unassigned"}, {Gc::Cn});
    return m;
  }();
  return names;
}

Ranges complement(const Ranges& r) {
  Ranges out;
  char32_t next = 0;
  for (const auto& [a, b] : r) {
    if (a > next) out.emplace_back(next, a - 1);
    next = b + 1;
  }
  if (next <= 0x10FFFF) out.emplace_back(next, 0x10FFFF);
  // PCRE2 in UTF mode rejects surrogate code points in a class.
  Ranges cut;
  for (const auto& [a, b] : out) {
    if (b < 0xD800 || a > 0xDFFF) {
      cut.emplace_back(a, b);
      continue;
    }
    if (a < 0xD800) cut.emplace_back(a, 0xD7FF);
    if (b > 0xDFFF) cut.emplace_back(0xE000, b);
  }
  return cut;
}

// The body of a character class (no brackets) for the ranges.
std::string class_body(const Ranges& r) {
  std::string out;
  char buf[32];
  for (const auto& [a, b] : r) {
    if (a >= 0xD800 && b <= 0xDFFF) continue;
    if (a == b) {
      std::snprintf(buf, sizeof buf, "\\x{%X}", static_cast<unsigned>(a));
    } else {
      std::snprintf(buf, sizeof buf, "\\x{%X}-\\x{%X}", static_cast<unsigned>(a), static_cast<unsigned>(b));
    }
    out += buf;
  }
  return out;
}

// The class body for an escape (\s, \d, \w, \h and negations, or a category name), or false
// when the escape is not one of ours. Cached: a pattern often repeats \p{L}.
bool escape_body(const std::string& key, bool negated, std::string* body) {
  static std::mutex mu;
  static std::map<std::pair<std::string, bool>, std::string> cache;
  std::lock_guard<std::mutex> lock(mu);
  const auto hit = cache.find({key, negated});
  if (hit != cache.end()) {
    *body = hit->second;
    return true;
  }
  Ranges r;
  if (key == "\\s") {
    r = unicode::ranges_where([](const unicode::CharProps& p) { return p.re_space; });
  } else if (key == "\\d") {
    r = unicode::ranges_where([](const unicode::CharProps& p) { return p.re_digit; });
  } else if (key == "\\w") {
    r = unicode::ranges_where([](const unicode::CharProps& p) { return p.re_word; });
  } else if (key == "\\h") {  // Oniguruma: a hexadecimal digit
    r = {{'0', '9'}, {'A', 'F'}, {'a', 'f'}};
  } else {
    const auto it = category_names().find(key);
    if (it == category_names().end()) return false;
    const auto& gcs = it->second;
    r = unicode::ranges_where([&](const unicode::CharProps& p) {
      return std::find(gcs.begin(), gcs.end(), p.gc) != gcs.end();
    });
  }
  *body = cache[{key, negated}] = class_body(negated ? complement(r) : r);
  return true;
}

std::string property_key(std::string name) {
  std::string key;
  for (char c : name) {
    if (c != '_' && c != '-' && c != ' ') key += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return key;
}

// Length of the UTF-8 sequence starting with byte c (1 for a stray byte).
size_t utf8_len(unsigned char c) {
  return c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 1;
}

}  // namespace

std::string TokenizerRegex::translate(const std::string& p) {
  std::string out;
  int class_depth = 0;
  for (size_t i = 0; i < p.size();) {
    const char c = p[i];
    if (c == '[') {
      out += c;
      ++i;
      // A POSIX class [:name:] inside a class is copied whole.
      if (class_depth > 0 && i < p.size() && p[i] == ':') {
        const size_t end = p.find(":]", i + 1);
        if (end != std::string::npos) {
          out.append(p, i, end + 2 - i);
          i = end + 2;
          continue;
        }
      }
      ++class_depth;
      if (i < p.size() && p[i] == '^') out += p[i++];
      if (i < p.size() && p[i] == ']') out += p[i++];  // a literal ] first in the class
      continue;
    }
    if (c == ']' && class_depth > 0) {
      --class_depth;
      out += c;
      ++i;
      continue;
    }
    if (c != '\\' || i + 1 >= p.size()) {
      const size_t n = std::min(utf8_len(static_cast<unsigned char>(c)), p.size() - i);
      out.append(p, i, n);
      i += n;
      continue;
    }
    const char e = p[i + 1];
    std::string key;
    bool negated = false;
    size_t next = i + 2;
    if (e == 'p' || e == 'P') {
      negated = e == 'P';
      if (next < p.size() && p[next] == '{') {
        const size_t close = p.find('}', next);
        if (close == std::string::npos) {  // malformed: PCRE2 reports it
          out.append(p, i, 2);
          i += 2;
          continue;
        }
        std::string name = p.substr(next + 1, close - next - 1);
        if (!name.empty() && name[0] == '^') {
          negated = !negated;
          name.erase(0, 1);
        }
        key = property_key(name);
        next = close + 1;
      } else if (next < p.size()) {
        key = property_key(std::string(1, p[next]));
        ++next;
      }
    } else if (e == 's' || e == 'd' || e == 'w' || e == 'h') {
      key = std::string("\\") + e;
    } else if (e == 'S' || e == 'D' || e == 'W' || e == 'H') {
      key = std::string("\\") + static_cast<char>(std::tolower(e));
      negated = true;
    } else if (e == 'Q') {  // \Q...\E: literal text, copied as is
      const size_t end = p.find("\\E", i + 2);
      const size_t stop = end == std::string::npos ? p.size() : end + 2;
      out.append(p, i, stop - i);
      i = stop;
      continue;
    } else if (e == 'u' && i + 6 <= p.size() &&
               std::all_of(p.begin() + static_cast<std::ptrdiff_t>(i) + 2, p.begin() + static_cast<std::ptrdiff_t>(i) + 6,
                           [](char h) { return std::isxdigit(static_cast<unsigned char>(h)) != 0; })) {
      out += "\\x{" + p.substr(i + 2, 4) + "}";  // Oniguruma's \uHHHH
      i += 6;
      continue;
    }
    std::string body;
    if (!key.empty() && escape_body(key, negated, &body)) {
      out += class_depth > 0 ? body : "[" + body + "]";
    } else {
      // Any other escape: the backslash and one whole character.
      const size_t n = 1 + std::min(utf8_len(static_cast<unsigned char>(e)), p.size() - i - 1);
      next = std::max(next, i + n);
      out.append(p, i, next - i);
    }
    i = next;
  }
  return out;
}

struct TokenizerRegex::Code {
  pcre2_code* code = nullptr;
  bool jit = false;
  ~Code() { pcre2_code_free(code); }
};

TokenizerRegex::TokenizerRegex(const std::string& pattern, const std::string& where)
    : pattern_(pattern), code_(std::make_unique<Code>()) {
  const std::string translated = translate(pattern);
  int err = 0;
  PCRE2_SIZE offset = 0;
  code_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                              PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err, &offset, nullptr);
  if (!code_->code) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    throw std::runtime_error(where + ": regex \"" + pattern + "\" does not compile" +
                             (translated == pattern ? " at offset " + std::to_string(offset) : std::string()) + ": " +
                             reinterpret_cast<const char*>(msg));
  }
  // The JIT is an optimization only: without it (no JIT in this PCRE2 build) the interpreter runs.
  code_->jit = pcre2_jit_compile(code_->code, PCRE2_JIT_COMPLETE) == 0;
}

TokenizerRegex::~TokenizerRegex() = default;

std::vector<std::pair<size_t, size_t>> TokenizerRegex::find_all(std::string_view s) const {
  std::vector<std::pair<size_t, size_t>> out;
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(code_->code, nullptr);
  size_t pos = 0;
  while (pos <= s.size()) {  // pos strictly increases each round
    int rc = pcre2_match(code_->code, reinterpret_cast<PCRE2_SPTR>(s.data()), s.size(), pos, 0, md, nullptr);
    if (rc < 0 && rc != PCRE2_ERROR_NOMATCH && code_->jit) {  // the JIT's stack is small: retry interpreted
      rc = pcre2_match(code_->code, reinterpret_cast<PCRE2_SPTR>(s.data()), s.size(), pos, PCRE2_NO_JIT, md, nullptr);
    }
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {  // a matching limit: never a silently different split
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(rc, msg, sizeof msg);
      pcre2_match_data_free(md);
      throw std::runtime_error("regex \"" + pattern_ + "\": matching a text of " + std::to_string(s.size()) +
                               " bytes failed: " + reinterpret_cast<const char*>(msg));
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    const size_t b = ov[0], e = ov[1];
    if (b < pos || e < b) break;  // \K tricks; never expected from tokenizer patterns
    out.emplace_back(b, e);
    if (e > b) {
      pos = e;
    } else {  // empty match: resume after the next character
      size_t next = b + 1;
      while (next < s.size() && (static_cast<unsigned char>(s[next]) & 0xC0) == 0x80) ++next;
      pos = next;
    }
  }
  pcre2_match_data_free(md);
  return out;
}

}  // namespace lorascope
