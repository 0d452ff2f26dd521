#include "data/mail_text.h"
#include "data/utf8.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <utility>
#include <vector>

namespace lorascope {

namespace {

using Headers = std::vector<std::pair<std::string, std::string>>;  // lower-case name, value

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool starts_with(const std::string& s, const char* prefix) {
  return s.compare(0, std::strlen(prefix), prefix) == 0;
}

std::string header(const Headers& h, const char* name) {
  for (const auto& [k, v] : h) {
    if (k == name) return v;
  }
  return {};
}

// Splits an entity at its first blank line; folded header lines are joined to the previous one.
std::pair<Headers, std::string> split_entity(const std::string& text) {
  if (!text.empty() && text[0] == '\n') return {Headers{}, text.substr(1)};  // no headers
  size_t split = text.find("\n\n");
  const bool has_body = split != std::string::npos;
  if (!has_body) split = text.size();
  Headers headers;
  size_t pos = 0;
  while (pos < split) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos || end > split) end = split;
    std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    if ((line[0] == ' ' || line[0] == '\t') && !headers.empty()) {
      const size_t v = line.find_first_not_of(" \t");
      if (v != std::string::npos) headers.back().second += " " + line.substr(v);
      continue;
    }
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;  // e.g. the mbox "From " line
    size_t v = line.find_first_not_of(" \t", colon + 1);
    headers.emplace_back(lower(line.substr(0, colon)),
                         v == std::string::npos ? "" : line.substr(v));
  }
  return {std::move(headers), has_body ? text.substr(split + 2) : std::string()};
}

std::string param(const std::string& value, const char* name) {
  const std::string key = std::string(name) + "=";
  const size_t at = lower(value).find(key);
  if (at == std::string::npos) return {};
  size_t begin = at + key.size();
  if (begin < value.size() && value[begin] == '"') {
    const size_t end = value.find('"', begin + 1);
    return value.substr(begin + 1, end == std::string::npos ? std::string::npos : end - begin - 1);
  }
  const size_t end = value.find_first_of("; \t", begin);
  return value.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
}

std::string decode_quoted_printable(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '=') {
      out += s[i];
    } else if (i + 1 < s.size() && s[i + 1] == '\n') {
      ++i;  // soft line break
    } else if (i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    } else {
      out += '=';
    }
  }
  return out;
}

std::string decode_base64(const std::string& s) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : s) {
    int v;
    if (c >= 'A' && c <= 'Z') {
      v = c - 'A';
    } else if (c >= 'a' && c <= 'z') {
      v = c - 'a' + 26;
    } else if (c >= '0' && c <= '9') {
      v = c - '0' + 52;
    } else if (c == '+') {
      v = 62;
    } else if (c == '/') {
      v = 63;
    } else if (c == '=') {
      break;
    } else {
      continue;
    }
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  return out;
}

// haystack holds needle ("<html", lower case) in any case.
bool contains_nocase(const std::string& haystack, const char* needle) {
  const size_t n = std::strlen(needle);
  for (size_t i = haystack.find(needle[0]); i != std::string::npos && i + n <= haystack.size();
       i = haystack.find(needle[0], i + 1)) {
    size_t k = 1;
    while (k < n && std::tolower(static_cast<unsigned char>(haystack[i + k])) == needle[k]) ++k;
    if (k == n) return true;
  }
  return false;
}

void walk(const Headers& headers, const std::string& body, int depth, std::string& out) {
  const std::string type = lower(header(headers, "content-type"));
  const std::string boundary = param(header(headers, "content-type"), "boundary");
  if (starts_with(type, "multipart/") && !boundary.empty() && depth < 8) {
    // Parts lie between "--boundary" lines; the preamble before the first one is dropped.
    const std::string delim = "--" + boundary;
    std::vector<std::string> parts;
    bool inside = false;
    size_t pos = 0;
    while (pos < body.size()) {
      size_t end = body.find('\n', pos);
      if (end == std::string::npos) end = body.size();
      if (body.compare(pos, delim.size(), delim) == 0) {
        if (body.compare(pos + delim.size(), 2, "--") == 0) break;
        parts.emplace_back();
        inside = true;
      } else if (inside) {
        parts.back().append(body, pos, end - pos).push_back('\n');
      }
      pos = end + 1;
    }
    std::vector<std::pair<Headers, std::string>> entities;
    for (const auto& p : parts) entities.push_back(split_entity(p));
    if (starts_with(type, "multipart/alternative") && !entities.empty()) {
      size_t pick = 0;
      for (size_t i = 0; i < entities.size(); ++i) {
        const std::string t = lower(header(entities[i].first, "content-type"));
        if (t.empty() || starts_with(t, "text/plain")) {
          pick = i;
          break;
        }
      }
      walk(entities[pick].first, entities[pick].second, depth + 1, out);
    } else {
      for (const auto& [h, b] : entities) walk(h, b, depth + 1, out);
    }
    return;
  }
  if (!type.empty() && !starts_with(type, "text/") && !starts_with(type, "multipart/")) return;
  const std::string encoding = lower(header(headers, "content-transfer-encoding"));
  std::string text = encoding.find("quoted-printable") != std::string::npos
                         ? decode_quoted_printable(body)
                     : encoding.find("base64") != std::string::npos ? decode_base64(body)
                                                                    : body;
  // Much spam sends HTML as text/plain.
  if (type.find("html") != std::string::npos || contains_nocase(text, "<html") ||
      contains_nocase(text, "<body")) {
    text = strip_html(text);
  }
  if (!out.empty()) out += "\n\n";
  out += text;
}

// Spaces and tabs collapsed, lines trimmed, at most one blank line in a row, ends trimmed.
std::string tidy(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  int newlines = 0;
  bool space = false;
  for (char c : s) {
    if (c == '\n') {
      ++newlines, space = false;
    } else if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
      space = true;
    } else {
      if (!out.empty()) {
        if (newlines > 0) {
          out.append(newlines > 1 ? 2 : 1, '\n');
        } else if (space) {
          out += ' ';
        }
      }
      out += c;
      newlines = 0, space = false;
    }
  }
  return out;
}

}  // namespace

std::string strip_html(const std::string& html) {
  static const char* kBreaks[] = {"br",  "p",   "/p",    "div",    "/div",  "tr",
                                  "/tr", "li",  "table", "/table", "h1",    "h2",
                                  "h3",  "/h1", "/h2",   "/h3",    "title", "/title"};
  std::string out;
  out.reserve(html.size());
  const std::string low = lower(html);
  size_t i = 0;
  while (i < html.size()) {
    const char c = html[i];
    if (c == '<') {
      if (low.compare(i, 4, "<!--") == 0) {
        const size_t end = low.find("-->", i + 4);
        i = end == std::string::npos ? html.size() : end + 3;
        continue;
      }
      // Style sheets and scripts are not text: jump to their closing tag.
      for (const char* block : {"style", "script"}) {
        if (low.compare(i + 1, std::strlen(block), block) == 0) {
          i = std::min(low.find(std::string("</") + block, i), html.size());
          break;  // an unclosed block ends the text: i is past the end
        }
      }
      if (i >= html.size()) break;
      const size_t close = html.find('>', i);
      if (close == std::string::npos) break;  // an unclosed tag swallows the rest
      size_t name_end = low.find_first_of(" \t\n/>", i + 2);
      const std::string name = low.substr(i + 1, std::min(name_end, close) - i - 1);
      for (const char* b : kBreaks) {
        if (name == b) {
          out += '\n';
          break;
        }
      }
      if (name == "td" || name == "th") out += ' ';
      i = close + 1;
    } else if (c == '&') {
      const size_t semi = html.find(';', i);
      const std::string ent =
          semi != std::string::npos && semi - i <= 8 ? low.substr(i + 1, semi - i - 1) : "";
      static const std::pair<const char*, const char*> kEntities[] = {
          {"nbsp", " "}, {"amp", "&"}, {"lt", "<"}, {"gt", ">"}, {"quot", "\""}, {"apos", "'"}};
      const auto* named = std::find_if(std::begin(kEntities), std::end(kEntities),
                                       [&](const auto& e) { return ent == e.first; });
      if (named != std::end(kEntities)) {
        out += named->second;
      } else if (ent.size() > 1 && ent[0] == '#') {  // &#233; or &#xE9;
        const bool hex = ent[1] == 'x';
        const auto cp = std::strtoul(ent.c_str() + (hex ? 2 : 1), nullptr, hex ? 16 : 10);
        if (cp > 0) append_utf8(out, static_cast<uint32_t>(cp));
      } else {
        out += '&';
        ++i;
        continue;
      }
      i = semi + 1;
    } else {
      out += c;
      ++i;
    }
  }
  return out;
}

std::string to_valid_utf8(const std::string& bytes) {
  std::string out;
  out.reserve(bytes.size());
  const auto* s = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t n = bytes.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char b = s[i];
    if (b < 0x80) {  // ASCII runs in one append
      size_t j = i + 1;
      while (j < n && s[j] < 0x80) ++j;
      out.append(bytes, i, j - i);
      i = j;
      continue;
    }
    size_t len = (b >= 0xC2 && b <= 0xDF)   ? 2
                 : (b >= 0xE0 && b <= 0xEF) ? 3
                 : (b >= 0xF0 && b <= 0xF4) ? 4
                                            : 0;
    bool ok = len > 0 && i + len <= n;
    for (size_t k = 1; ok && k < len; ++k) ok = (s[i + k] & 0xC0) == 0x80;
    // Overlong forms, surrogates and code points past U+10FFFF.
    if (ok && len >= 3) {
      const unsigned char b1 = s[i + 1];
      if ((b == 0xE0 && b1 < 0xA0) || (b == 0xED && b1 >= 0xA0) || (b == 0xF0 && b1 < 0x90) ||
          (b == 0xF4 && b1 >= 0x90)) {
        ok = false;
      }
    }
    if (ok) {
      out.append(bytes, i, len);
      i += len;
    } else {
      append_utf8(out, b);
      ++i;
    }
  }
  return out;
}

std::string mail_subject_and_body(const std::string& raw, int64_t max_chars) {
  std::string text = raw;
  text.erase(std::remove(text.begin(), text.end(), '\r'), text.end());
  const auto [headers, body] = split_entity(text);
  std::string out = tidy(header(headers, "subject"));
  std::string content;
  walk(headers, body, 0, content);
  content = tidy(content);
  if (!content.empty()) out += out.empty() ? content : "\n\n" + content;
  out = to_valid_utf8(out);
  if (max_chars > 0 && static_cast<int64_t>(out.size()) > max_chars) {
    size_t cut = static_cast<size_t>(max_chars);
    while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;
    out.resize(cut);
    while (!out.empty() && std::isspace(static_cast<unsigned char>(out.back()))) out.pop_back();
  }
  return out;
}

}  // namespace lorascope
