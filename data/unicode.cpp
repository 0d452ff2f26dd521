#include "data/unicode.h"

#include <algorithm>
#include <iterator>

#include "data/utf8.h"

namespace lorascope::unicode {

namespace {

struct Mapping {
  char32_t cp;
  uint16_t offset, length;  // into the pool
};

#include "data/unicode_tables.inc"

constexpr size_t kRanges = std::size(kStarts);
static_assert(std::size(kValues) == kRanges, "unicode_tables.inc: one value per range");

// The bit layout written by data/unicode_tables.py (pack).
CharProps unpack(uint32_t v) {
  CharProps p;
  p.gc = static_cast<Gc>(v & 0x1F);
  p.re_space = v >> 5 & 1;
  p.re_digit = v >> 6 & 1;
  p.re_word = v >> 7 & 1;
  p.bert_clean = static_cast<BertClean>(v >> 8 & 3);
  p.bert_split = static_cast<BertSplit>(v >> 10 & 3);
  p.chinese = v >> 12 & 1;
  p.nonspacing_mark = v >> 13 & 1;
  p.token_word = v >> 14 & 1;
  p.token_space = v >> 15 & 1;
  p.ccc_rank = static_cast<uint8_t>(v >> 16 & 0xFF);
  return p;
}

uint32_t packed(char32_t c) {
  if (c > 0x10FFFF) return 0;
  const auto* it = std::upper_bound(kStarts, kStarts + kRanges, c);
  return kValues[it - kStarts - 1];  // kStarts[0] == 0
}

// The mapped sequence of c, or {nullptr, 0} when c maps to itself.
template <size_t N, size_t P>
std::pair<const char32_t*, size_t> lookup(const Mapping (&table)[N], const char32_t (&pool)[P], char32_t c) {
  const auto* it = std::lower_bound(table, table + N, c, [](const Mapping& m, char32_t x) { return m.cp < x; });
  if (it == table + N || it->cp != c) return {nullptr, 0};
  return {pool + it->offset, it->length};
}

constexpr char32_t kReplacement = 0xFFFD;

}  // namespace

CharProps props(char32_t c) { return unpack(packed(c)); }

std::vector<std::pair<char32_t, char32_t>> ranges_where(const std::function<bool(const CharProps&)>& pred) {
  std::vector<std::pair<char32_t, char32_t>> out;
  for (size_t i = 0; i < kRanges; ++i) {
    if (!pred(unpack(kValues[i]))) continue;
    const char32_t last = i + 1 < kRanges ? kStarts[i + 1] - 1 : 0x10FFFF;
    if (!out.empty() && out.back().second + 1 == kStarts[i]) {
      out.back().second = last;
    } else {
      out.emplace_back(kStarts[i], last);
    }
  }
  return out;
}

std::u32string decode_utf8(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const auto b = static_cast<unsigned char>(s[i]);
    size_t n = 0;
    char32_t c = 0, min = 0;
    if (b < 0x80) {
      out += b;
      ++i;
      continue;
    } else if ((b & 0xE0) == 0xC0) {
      n = 2, c = b & 0x1F, min = 0x80;
    } else if ((b & 0xF0) == 0xE0) {
      n = 3, c = b & 0x0F, min = 0x800;
    } else if ((b & 0xF8) == 0xF0) {
      n = 4, c = b & 0x07, min = 0x10000;
    }
    bool ok = n > 0 && i + n <= s.size();
    for (size_t k = 1; ok && k < n; ++k) {
      const auto cont = static_cast<unsigned char>(s[i + k]);
      ok = (cont & 0xC0) == 0x80;
      c = c << 6 | (cont & 0x3F);
    }
    ok = ok && c >= min && c <= 0x10FFFF && !(c >= 0xD800 && c <= 0xDFFF);
    out += ok ? c : kReplacement;
    i += ok ? n : 1;
  }
  return out;
}

std::string encode_utf8(std::u32string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) append_utf8(out, c);
  return out;
}

std::u32string nfd(std::u32string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (char32_t c : s) {
    if (c >= 0xAC00 && c < 0xAC00 + 11172) {  // Hangul syllable: L V (T), Unicode ch. 3.12
      const char32_t idx = c - 0xAC00;
      out += static_cast<char32_t>(0x1100 + idx / 588);
      out += static_cast<char32_t>(0x1161 + idx % 588 / 28);
      if (idx % 28) out += static_cast<char32_t>(0x11A7 + idx % 28);
      continue;
    }
    const auto [seq, n] = lookup(kDecomposition, kDecompositionPool, c);
    if (seq) {
      out.append(seq, n);
    } else {
      out += c;
    }
  }
  // Canonical ordering: stable sort of each run of non-starters by combining class.
  for (size_t i = 0; i < out.size();) {
    if (props(out[i]).ccc_rank == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < out.size() && props(out[j]).ccc_rank != 0) ++j;
    if (j - i > 1) {
      std::stable_sort(out.begin() + static_cast<std::ptrdiff_t>(i), out.begin() + static_cast<std::ptrdiff_t>(j),
                       [](char32_t a, char32_t b) { return props(a).ccc_rank < props(b).ccc_rank; });
    }
    i = j;
  }
  return out;
}

std::u32string lowercase(std::u32string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (char32_t c : s) {
    const auto [seq, n] = lookup(kLowercase, kLowercasePool, c);
    if (seq) {
      out.append(seq, n);
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace lorascope::unicode
