// A regex of a tokenizer.json (Split pre-tokenizers, Replace normalizers, the ByteLevel
// pattern), matched as `tokenizers` matches it. The patterns are written for Oniguruma; PCRE2
// runs them after one translation: every Unicode class (\p{L}, \P{N}, \s, \d, \w, and
// Oniguruma's \h = hex digit) becomes an explicit class of code point ranges from
// data/unicode.h, so that characters new in Unicode 15 and 16 match as in `tokenizers`
// (Debian's PCRE2 10.42 knows Unicode 14). Script properties (\p{Han}) are left to PCRE2.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lorascope {

class TokenizerRegex {
 public:
  // Throws std::runtime_error "WHERE: regex \"...\" does not compile at offset N: ...".
  TokenizerRegex(const std::string& pattern, const std::string& where);
  ~TokenizerRegex();
  TokenizerRegex(const TokenizerRegex&) = delete;
  TokenizerRegex& operator=(const TokenizerRegex&) = delete;

  // Byte spans [begin, end) of the successive non-overlapping matches in s (UTF-8; invalid
  // bytes match nothing), left to right; after an empty match the search resumes one
  // character later.
  std::vector<std::pair<size_t, size_t>> find_all(std::string_view s) const;
  const std::string& pattern() const { return pattern_; }

  // The PCRE2 pattern that replaces an Oniguruma pattern (exposed for tests).
  static std::string translate(const std::string& pattern);

 private:
  std::string pattern_;
  struct Code;
  std::unique_ptr<Code> code_;
};

}  // namespace lorascope
